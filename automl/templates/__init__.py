"""Templates shipped inside the automl wheel as `automl.templates` (rendered by `automl new-plugin`).

`plugin/` is a Jinja2 template of a complete plugin distribution: files ending in `.jinja` are rendered (and
lose the suffix), every other file is copied as is, and `{{name}}` in a path becomes the plugin's name.
"""
