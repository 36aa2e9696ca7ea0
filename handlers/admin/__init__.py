"""/admin: one module per page of the navigation (DESIGN.md "Admin"); their routes are joined here."""

from handlers.admin import audit, menu, notify, replies, signin, states, users

default_handlers = [route for page in (signin, states, replies, users, notify, menu, audit) for route in page.default_handlers]
