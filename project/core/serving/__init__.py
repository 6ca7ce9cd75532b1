"""What the application's process uses: migrations at start-up (`startup`) and the `/health` routes (`health`).
Imports the runner and below; the tool never imports the application."""
