"""End-to-end checks with the official `openai` Python SDK against the gateway's /v1."""

import json

import openai
from openai import OpenAI

from common import TOOLS_SCHEMA, close, run

USER = {"role": "user", "content": "What is the weather in Oslo?"}


def main(spec, c):
    client = OpenAI(
        base_url=spec["base_url"] + "/v1",
        api_key=spec.get("api_key") or "no-key-needed",
        max_retries=0,
        timeout=20.0,
    )
    tools = [
        {
            "type": "function",
            "function": {
                "name": spec["tool_name"],
                "description": "Current weather for a city",
                "parameters": TOOLS_SCHEMA,
            },
        }
    ]

    c.step("list_models")
    ids = [m.id for m in client.models.list()]
    for want in spec["models_expected"]:
        c.check(want in ids, f"{want!r} not in {ids}")
    c.ok(f"{len(ids)} models")

    c.step("chat")
    raw = client.chat.completions.with_raw_response.create(
        model=spec["chat_model"], messages=[USER]
    )
    r = raw.parse()
    c.check(r.choices[0].message.content == spec["expect_text"], f"content {r.choices[0].message.content!r}")
    c.check(r.choices[0].finish_reason == "stop", f"finish_reason {r.choices[0].finish_reason!r}")
    c.check(r.usage is not None and r.usage.total_tokens > 0, f"usage {r.usage!r}")
    target = raw.headers.get("x-switchyard-target")
    c.check(bool(target), f"no x-switchyard-target header in {dict(raw.headers)}")
    c.ok(f"target={target}")

    c.step("chat_stream")
    text, finish, usage, chunks = "", None, None, 0
    stream = client.chat.completions.create(
        model=spec["chat_model"],
        messages=[USER],
        stream=True,
        stream_options={"include_usage": True},
    )
    for chunk in stream:
        chunks += 1
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
    c.check(text == spec["expect_text"], f"streamed text {text!r}")
    c.check(finish == "stop", f"finish_reason {finish!r}")
    c.check(usage is not None and usage.completion_tokens > 0, f"usage {usage!r}")
    c.check(chunks >= 3, f"only {chunks} chunks: not streamed?")
    c.ok(f"{chunks} chunks")

    c.step("tool_call")
    r = client.chat.completions.create(model=spec["tool_model"], messages=[USER], tools=tools)
    msg = r.choices[0].message
    c.check(r.choices[0].finish_reason == "tool_calls", f"finish_reason {r.choices[0].finish_reason!r}")
    c.check(msg.tool_calls and len(msg.tool_calls) == 1, f"tool_calls {msg.tool_calls!r}")
    call = msg.tool_calls[0]
    c.check(call.function.name == spec["tool_name"], f"name {call.function.name!r}")
    c.check(json.loads(call.function.arguments) == spec["tool_args"], f"arguments {call.function.arguments!r}")
    c.check(call.id, "the call has no id")
    c.ok(call.id)

    c.step("tool_call_stream")
    calls = {}
    finish = None
    for chunk in client.chat.completions.create(
        model=spec["tool_model"], messages=[USER], tools=tools, stream=True
    ):
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for d in choice.delta.tool_calls or []:
                entry = calls.setdefault(d.index, {"id": None, "name": "", "args": ""})
                entry["id"] = d.id or entry["id"]
                if d.function is not None:
                    entry["name"] += d.function.name or ""
                    entry["args"] += d.function.arguments or ""
    c.check(finish == "tool_calls", f"finish_reason {finish!r}")
    c.check(len(calls) == 1, f"calls {calls!r}")
    streamed = calls[0]
    c.check(streamed["name"] == spec["tool_name"], f"name {streamed['name']!r}")
    c.check(json.loads(streamed["args"]) == spec["tool_args"], f"arguments {streamed['args']!r}")
    c.check(streamed["id"], "no call id in the stream")
    c.ok(streamed["id"])

    c.step("tool_result")
    messages = [
        USER,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.function.name, "arguments": call.function.arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call.id, "content": spec["tool_result"]},
    ]
    r = client.chat.completions.create(model=spec["followup_model"], messages=messages, tools=tools)
    c.check(r.choices[0].message.content == spec["followup_text"], f"content {r.choices[0].message.content!r}")
    c.ok()

    c.step("embeddings")
    # The SDK asks for base64 unless told otherwise, and decodes it.
    r = client.embeddings.create(model=spec["embed_model"], input=spec["embed_inputs"])
    got = [d.embedding for d in r.data]
    c.check(close(got, spec["embed_expected"]), f"embeddings {got!r}")
    r = client.embeddings.create(model=spec["embed_model"], input=spec["embed_inputs"][0], encoding_format="float")
    c.check(close([r.data[0].embedding], spec["embed_expected"][:1]), f"float embedding {r.data[0].embedding!r}")
    c.check(r.usage.prompt_tokens > 0, f"usage {r.usage!r}")
    c.ok(f"{len(got)} vectors")

    c.step("completions_suffix")
    r = client.completions.create(model=spec["chat_model"], prompt=spec["fim_prompt"], suffix=spec["fim_suffix"], max_tokens=32)
    c.check(r.choices[0].text == spec["fim_expected"], f"text {r.choices[0].text!r}")
    text = "".join(
        ch.choices[0].text
        for ch in client.completions.create(
            model=spec["chat_model"], prompt=spec["fim_prompt"], suffix=spec["fim_suffix"], stream=True
        )
        if ch.choices
    )
    c.check(text == spec["fim_expected"], f"streamed {text!r}")
    c.ok()

    c.step("error")
    try:
        client.chat.completions.create(model=spec["error_model"], messages=[USER])
        c.check(False, "no error raised")
    except openai.APIStatusError as e:
        c.check(e.status_code == spec["error_status"], f"status {e.status_code}, body {e.body!r}")
        body = json.dumps(e.body)
        c.check(spec["error_contains"] in body, f"{spec['error_contains']!r} not in {body}")
        c.ok(f"{e.status_code}")

    if spec.get("api_key"):
        c.step("auth_error")
        wrong = OpenAI(base_url=spec["base_url"] + "/v1", api_key="wrong-key", max_retries=0, timeout=20.0)
        try:
            wrong.models.list()
            c.check(False, "a wrong key was accepted")
        except openai.AuthenticationError as e:
            c.check(e.status_code == 401, f"status {e.status_code}")
            c.ok("401")

    return {"call_id": call.id, "target": target}


run(main)
