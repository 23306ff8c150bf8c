"""Identity and access: users, sessions, client tokens; pages and routes use `AuthService`."""
