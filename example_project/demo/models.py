"""The files API's data: each user's own files (the "resource" the resource owner protects)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

NAME_MAX_LENGTH = 200
CONTENT_MAX_LENGTH = 10_000


class File(models.Model):
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="demo_files", verbose_name=_("owner")
    )
    name = models.CharField(_("name"), max_length=NAME_MAX_LENGTH)
    content = models.TextField(_("content"), blank=True, max_length=CONTENT_MAX_LENGTH)
    created = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["owner", "-created"], name="demo_file_owner_created_idx")]
        verbose_name = _("file")
        verbose_name_plural = _("files")

    def __str__(self) -> str:
        return self.name
