"""tradeconsole engine: everything that trades. Imports nothing from Textual."""
