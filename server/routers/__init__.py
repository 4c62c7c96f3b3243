"""The HTTP and WebSocket routes, one router per area; `server.app.create_app` includes them all. Each route parses,
calls a public method of the agent, and answers or streams: no pipeline logic lives here."""
