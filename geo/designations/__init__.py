"""The register of service designations (지정) and the languages centres' staff speak (``register``)."""
