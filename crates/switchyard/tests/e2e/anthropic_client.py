"""End-to-end checks with the official `anthropic` Python SDK against the gateway's
/v1/messages: models, a plain message, a streamed tool call that finishes the turn with the
tool's result, thinking, and an error."""

import anthropic
from anthropic import Anthropic

from common import TOOLS_SCHEMA, run

USER = {"role": "user", "content": "What is the weather in Oslo?"}


def main(spec, c):
    client = Anthropic(
        base_url=spec["base_url"],
        api_key=spec["api_key"],
        max_retries=0,
        timeout=20.0,
    )
    tools = [
        {
            "name": spec["tool_name"],
            "description": "Current weather for a city",
            "input_schema": TOOLS_SCHEMA,
        }
    ]

    c.step("list_models")
    ids = [m.id for m in client.models.list()]
    for want in spec["models_expected"]:
        c.check(want in ids, f"{want!r} not in {ids}")
    c.ok(f"{len(ids)} models")

    c.step("message")
    raw = client.messages.with_raw_response.create(
        model=spec["chat_model"], max_tokens=256, messages=[USER]
    )
    m = raw.parse()
    c.check(m.content[0].text == spec["expect_text"], f"content {m.content!r}")
    c.check(m.stop_reason == "end_turn", f"stop_reason {m.stop_reason!r}")
    c.check(m.usage.input_tokens > 0, f"usage {m.usage!r}")
    target = raw.headers.get("x-switchyard-target")
    c.check(bool(target), f"no x-switchyard-target header in {dict(raw.headers)}")
    c.ok(f"target={target}")

    c.step("stream_tool_call")
    events = []
    with client.messages.stream(
        model=spec["tool_model"], max_tokens=256, tools=tools, messages=[USER]
    ) as stream:
        for event in stream:
            events.append(event.type)
        first = stream.get_final_message()
    c.check(first.stop_reason == "tool_use", f"stop_reason {first.stop_reason!r}")
    calls = [b for b in first.content if b.type == "tool_use"]
    c.check(len(calls) == 1, f"content {first.content!r}")
    c.check(calls[0].name == spec["tool_name"], f"name {calls[0].name!r}")
    c.check(calls[0].input == spec["tool_args"], f"input {calls[0].input!r}")
    c.check("message_start" in events and "message_stop" in events, f"events {events}")
    c.check(first.usage.input_tokens > 0, f"usage {first.usage!r}")
    c.ok(f"{len(events)} events")

    c.step("finish_the_turn")
    text = ""
    with client.messages.stream(
        model=spec["followup_model"],
        max_tokens=256,
        tools=tools,
        messages=[
            USER,
            {"role": "assistant", "content": first.content},
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": calls[0].id,
                        "content": spec["tool_result"],
                    }
                ],
            },
        ],
    ) as stream:
        for chunk in stream.text_stream:
            text += chunk
        final = stream.get_final_message()
    c.check(text == spec["followup_text"], f"text {text!r}")
    c.check(final.stop_reason == "end_turn", f"stop_reason {final.stop_reason!r}")
    c.ok()

    c.step("error")
    try:
        client.messages.create(model=spec["error_model"], max_tokens=16, messages=[USER])
        c.check(False, "no error raised")
    except anthropic.APIStatusError as e:
        c.check(e.status_code == spec["error_status"], f"status {e.status_code}")
        c.check(e.body["error"]["type"] == "not_found_error", f"body {e.body!r}")
    c.ok()
    return {"tool_use_id": calls[0].id, "events": len(events)}


if __name__ == "__main__":
    run(main)
