"""/admin: one module per page of the navigation (DESIGN.md "Admin"); their routes are joined here."""

from handlers.admin import admins, audit, invite, me, menu, notify, replies, scan_signin, signin, states, users

PAGES = (signin, scan_signin, invite, me, states, replies, users, notify, menu, audit, admins)
default_handlers = [route for page in PAGES for route in page.default_handlers]
