from django.db import migrations

STANDARD_SCOPES = [
    ("openid", "Sign you in with your account", False),
    ("profile", "See your name and basic profile information", False),
    ("email", "See your email address", False),
    ("offline_access", "Stay connected when you are not using the app", False),
]


def create_scopes(apps, schema_editor):
    Scope = apps.get_model("oauth_server", "Scope")
    for name, description, is_default in STANDARD_SCOPES:
        Scope.objects.get_or_create(name=name, defaults={"description": description, "is_default": is_default})


def delete_scopes(apps, schema_editor):
    Scope = apps.get_model("oauth_server", "Scope")
    Scope.objects.filter(name__in=[name for name, _, _ in STANDARD_SCOPES]).delete()


class Migration(migrations.Migration):
    dependencies = [("oauth_server", "0001_initial")]
    operations = [migrations.RunPython(create_scopes, delete_scopes)]
