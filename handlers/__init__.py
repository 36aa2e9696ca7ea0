"""Tornado request handlers, thin: each module ends with `default_handlers`, joined here."""


def default_handlers() -> list:
    from handlers import admin, health, message, page, scan

    routes: list = []
    for module in (message, page, scan, health, admin):
        routes.extend(module.default_handlers)
    return routes
