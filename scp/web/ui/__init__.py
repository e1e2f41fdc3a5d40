"""What the portal and the console share: sessions in cookies, CSRF, languages, page rendering
(Jinja2, autoescaped), the charts, the base layout and the style sheet.

Pages are rendered on the server and work without JavaScript; the style sheet is served from
here (no CDN), laid out for a 375 px phone first and widened on a desktop.
"""
