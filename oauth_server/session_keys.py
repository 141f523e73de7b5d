"""Keys this app stores in the Django session (written by ``receivers.remember_auth_time``).

A module of their own so the code that reads them (authorize, re-authentication) and the receiver
that writes them share the names without importing each other.
"""

#: when the session's user last signed in (seconds since the epoch): max_age, prompt=login, auth_time
SESSION_AUTH_TIME_KEY = "oauth_server_auth_time"
#: a random id per sign-in: re-authentication (reauthentication.py) asks for a sign-in other than this one
SESSION_SIGN_IN_KEY = "oauth_server_sign_in"
