"""An agent that is not ours: the Python MCP SDK (`pip install mcp`) calling
tools through Warden's /mcp on the support-refunds example.

    python python_mcp_client.py http://127.0.0.1:8080 demo-support-bot

Prints one JSON object: the tools the agent sees and what three calls
answered (an allowed knowledge-base search served by the upstream MCP
server, a denied warehouse delete, a refund that waits for approval).
"""

import asyncio
import json
import sys

import httpx2
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client


def text_of(result):
    return "\n".join(c.text for c in result.content if getattr(c, "type", "") == "text")


async def main(base: str, token: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
        async with streamable_http_client(f"{base}/mcp", http_client=http) as streams:
            read, write = streams[0], streams[1]
            async with ClientSession(read, write) as session:
                await session.initialize()
                tools = await session.list_tools()
                out = {"tools": sorted(t.name for t in tools.tools), "calls": {}}
                calls = {
                    "kb_search_articles": {"query": "damaged"},
                    "db_delete_rows": {"table": "orders", "where": "1=1"},
                    "stripe_refund": {
                        "order_id": "ord_py1",
                        "customer_id": "cus_py1",
                        "amount_cents": 50000,
                        "reason": "damaged",
                    },
                }
                for name, args in calls.items():
                    r = await session.call_tool(name, args)
                    out["calls"][name] = {"is_error": bool(getattr(r, "is_error", None) or getattr(r, "isError", None)), "text": text_of(r)}
                print(json.dumps(out, indent=2))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python_mcp_client.py BASE_URL TOKEN")
    asyncio.run(main(sys.argv[1], sys.argv[2]))
