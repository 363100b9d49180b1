"""Code made for one event loop, and the only place (with ``dbos/``) where
anyflow imports asyncio or trio itself.  Everything else is written on anyio
and runs on both."""
