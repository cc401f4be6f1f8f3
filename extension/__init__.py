"""AUTOMATIC1111 / Forge extension logic. Only ``webui_*`` modules import the webui; the rest is
plain Python over the ``pal4vst`` core and is tested without a webui."""
