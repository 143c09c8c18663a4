TEMPLATES: dict[str, str] = {}
