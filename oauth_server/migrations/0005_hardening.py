"""Authorization codes at rest as SHA-256 checksums; exchanged codes kept as tombstones linked to the
tokens they issued (replay revokes them, RFC 6749 4.1.2).

Codes already in the table are in clear: they are hashed in place rather than deleted, so a user who
approved a client a few seconds before the deployment can still complete the exchange (codes live
60 seconds). Going back deletes every code: a checksum cannot be turned back into a code.
"""

import hashlib

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

_HEX = set("0123456789abcdef")


def _is_checksum(value: str) -> bool:
    return len(value) == 64 and set(value) <= _HEX


def hash_codes(apps, schema_editor):
    Grant = apps.get_model("oauth_server", "Grant")
    db = schema_editor.connection.alias
    for pk, code in Grant.objects.using(db).values_list("pk", "code").iterator():
        if code and not _is_checksum(code):
            digest = hashlib.sha256(code.encode("utf-8", "surrogatepass")).hexdigest()
            Grant.objects.using(db).filter(pk=pk).update(code=digest)


def drop_codes(apps, schema_editor):
    apps.get_model("oauth_server", "Grant").objects.using(schema_editor.connection.alias).all().delete()


class Migration(migrations.Migration):
    dependencies = [
        ("oauth_server", "0004_refreshtoken_auth_time"),
    ]

    operations = [
        migrations.AddField(
            model_name="grant",
            name="redeemed_at",
            field=models.DateTimeField(blank=True, editable=False, null=True, verbose_name="exchanged at"),
        ),
        migrations.AddField(
            model_name="accesstoken",
            name="grant",
            field=models.ForeignKey(
                blank=True,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.OAUTH2_PROVIDER_GRANT_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="refreshtoken",
            name="grant",
            field=models.ForeignKey(
                blank=True,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.OAUTH2_PROVIDER_GRANT_MODEL,
            ),
        ),
        migrations.RunPython(hash_codes, drop_codes, elidable=True),
    ]
