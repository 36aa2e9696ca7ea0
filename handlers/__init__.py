"""Tornado request handlers, thin: each module ends with `default_handlers`, joined here."""


def default_handlers() -> list:
    from handlers import admin, health, jssdk, message, page, scan

    routes: list = []
    for module in (message, page, jssdk, scan, health, admin):
        routes.extend(module.default_handlers)
    return routes
