"""Mount the standard gateway inside a FastAPI app, next to the app's own routes.

Run:  LLMROUTE_TOKEN=sk-example python examples/fastapi_mount.py
Then: curl http://127.0.0.1:8000/llm/v1/chat/completions -H "Authorization: Bearer sk-example" \
        -H 'content-type: application/json' -d '{"model": "demo", "messages": [{"role": "user", "content": "Hi"}]}'
"""

from __future__ import annotations

import os

from fastapi import FastAPI

from asgi_llmroute import DEMO_BASE_URL, build_gateway, parse_config

TOKEN = os.environ.get("LLMROUTE_TOKEN", "sk-example")

# The same schema as llmroute.toml, here as a dict; load_config("llmroute.toml") works too.
config = parse_config(
    {
        "tokens": [{"name": "example", "key": TOKEN}],
        "providers": [{"name": "demo", "api": "openai", "base_url": f"{DEMO_BASE_URL}/v1"}],
        "models": [{"name": "demo", "provider": "demo", "model": "demo"}],
    },
    source="examples/fastapi_mount.py",
)
gateway = build_gateway(config)

# Mounted apps get no lifespan events of their own: the outer app's lifespan closes the gateway's
# upstream connections (and its provider store) at shutdown. With a lifespan of your own, put
# `async with gateway:` inside it instead.
app = FastAPI(lifespan=gateway.lifespan)
app.mount("/llm", gateway)


@app.get("/")
async def index() -> dict[str, str]:
    return {"gateway": "/llm/v1/chat/completions"}


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=8000)
