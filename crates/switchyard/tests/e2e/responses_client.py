"""End-to-end checks with the official `openai` Python SDK's Responses API against the
gateway's /v1/responses: whole and streamed answers, a function tool round trip continued
with previous_response_id, the `responses.stream` helper, retrieve, and an error."""

import json

import openai
from openai import OpenAI

from common import TOOLS_SCHEMA, run


def main(spec, c):
    client = OpenAI(
        base_url=spec["base_url"] + "/v1",
        api_key=spec["api_key"],
        max_retries=0,
        timeout=20.0,
    )
    tools = [
        {
            "type": "function",
            "name": spec["tool_name"],
            "description": "Current weather for a city",
            "parameters": TOOLS_SCHEMA,
            "strict": False,
        }
    ]

    c.step("create")
    r = client.responses.create(model=spec["chat_model"], input="Hello", instructions="Be kind.")
    c.check(r.status == "completed", f"status {r.status!r}")
    c.check(r.output_text == spec["expect_text"], f"output_text {r.output_text!r}")
    c.check(r.usage is not None and r.usage.total_tokens > 0, f"usage {r.usage!r}")
    c.ok(r.id)

    c.step("create_stream_tool_call")
    stream = client.responses.create(
        model=spec["tool_model"],
        input="What is the weather in Oslo?",
        tools=tools,
        stream=True,
    )
    kinds, call, final, seqs = [], None, None, []
    for event in stream:
        kinds.append(event.type)
        seqs.append(event.sequence_number)
        if event.type == "response.output_item.done" and event.item.type == "function_call":
            call = event.item
        if event.type == "response.completed":
            final = event.response
    c.check(kinds[0] == "response.created", f"first event {kinds[:2]}")
    c.check(seqs == list(range(len(seqs))), f"sequence numbers {seqs}")
    c.check("response.function_call_arguments.delta" in kinds, f"events {kinds}")
    c.check(call is not None and call.name == spec["tool_name"], f"call {call!r}")
    c.check(json.loads(call.arguments) == spec["tool_args"], f"arguments {call.arguments!r}")
    c.check(final is not None and final.output[0].call_id == call.call_id, f"final {final!r}")
    c.ok(f"{len(kinds)} events, call {call.call_id}")

    c.step("tool_result_with_previous_response_id")
    r = client.responses.create(
        model=spec["tool_model"],
        previous_response_id=final.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": spec["tool_result"]}],
        tools=tools,
    )
    c.check(r.output_text == spec["followup_text"], f"output_text {r.output_text!r}")
    c.check(r.previous_response_id == final.id, f"previous_response_id {r.previous_response_id!r}")
    c.ok(r.id)

    c.step("stream_helper")
    with client.responses.stream(model=spec["chat_model"], input="Hello") as s:
        text = "".join(e.delta for e in s if e.type == "response.output_text.delta")
        done = s.get_final_response()
    c.check(text == spec["expect_text"], f"streamed text {text!r}")
    c.check(done.output_text == spec["expect_text"], f"final {done.output_text!r}")
    c.ok(done.id)

    c.step("retrieve")
    got = client.responses.retrieve(done.id)
    c.check(got.output_text == spec["expect_text"], f"retrieved {got.output_text!r}")
    items = list(client.responses.input_items.list(done.id))
    c.check(len(items) == 1, f"input items {items!r}")
    c.ok()

    c.step("error")
    try:
        client.responses.create(model=spec["error_model"], input="Hello")
        c.check(False, "no error raised")
    except openai.APIStatusError as e:
        c.check(e.status_code == spec["error_status"], f"status {e.status_code}")
        c.check(spec["error_contains"] in str(e), f"error {e}")
    c.ok()
    return {"call_id": call.call_id}


if __name__ == "__main__":
    run(main)
