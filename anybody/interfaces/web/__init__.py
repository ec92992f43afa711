"""The local web app (`anybody ui`): learn, draw and manage identities in a browser, over the same API as
the command line. Gradio is imported only by `app.py` and `server.py`, never when anybody starts.

    studio.py   what the app does, without the web (testable alone)
    app.py      the Gradio page: three tabs, each event one call of the studio, also Gradio's API
    limits.py   what the app accepts: every number's bounds, the choices, text and uploads (page and API alike)
    server.py   offline settings, the address and password, the upload folder, launching and stopping
"""
