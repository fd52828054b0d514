"""The HTTP side: the request pipeline around connexion, and errors in each API's own format."""
