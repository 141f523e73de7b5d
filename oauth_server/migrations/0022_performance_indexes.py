# Indexes for flat cost as data grows (docs/performance.md): cleartokens' deletes of expired ID
# tokens and revoked refresh tokens. Built CONCURRENTLY on PostgreSQL, so a site with millions of
# tokens keeps issuing them while the indexes build; hence atomic = False.

from django.db import migrations, models

from oauth_server.indexes import AddIndexConcurrentlyOnPostgreSQL


class Migration(migrations.Migration):

    atomic = False

    dependencies = [
        ('oauth_server', '0021_authz_dpop_jkt_and_jar'),
    ]

    operations = [
        AddIndexConcurrentlyOnPostgreSQL(
            model_name='idtoken',
            index=models.Index(fields=['expires'], name='oauth_idt_expires_idx'),
        ),
        AddIndexConcurrentlyOnPostgreSQL(
            model_name='refreshtoken',
            index=models.Index(fields=['revoked'], name='oauth_rt_revoked_idx'),
        ),
    ]
