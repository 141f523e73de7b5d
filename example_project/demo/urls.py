from django.urls import path

from . import client_views, views

urlpatterns = [
    path("", views.home, name="home"),
    path("demo/start/", client_views.start, name="demo-start"),
    path("demo/callback", client_views.callback, name="demo-callback"),
    path("demo/spa-callback", client_views.spa_callback, name="demo-spa-callback"),
]
