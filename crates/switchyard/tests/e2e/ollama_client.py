"""End-to-end checks with the official `ollama` Python SDK against the gateway's base URL."""

import ollama

from common import TOOLS_SCHEMA, close, run

USER = {"role": "user", "content": "What is the weather in Oslo?"}


def main(spec, c):
    headers = {"Authorization": f"Bearer {spec['api_key']}"} if spec.get("api_key") else None
    client = ollama.Client(host=spec["base_url"], headers=headers, timeout=20.0)
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
    names = [m.model for m in client.list().models]
    for want in spec["models_expected"]:
        c.check(want in names, f"{want!r} not in {names}")
    c.ok(f"{len(names)} models")

    c.step("show")
    shown = client.show(spec["chat_model"])
    c.check(shown.capabilities is None or "completion" in shown.capabilities, f"capabilities {shown.capabilities!r}")
    c.ok(f"capabilities={shown.capabilities}")

    c.step("chat")
    r = client.chat(model=spec["chat_model"], messages=[USER])
    c.check(r.message.content == spec["expect_text"], f"content {r.message.content!r}")
    c.check(r.done, "done is not true")
    c.check((r.eval_count or 0) > 0, f"eval_count {r.eval_count!r}")
    c.ok()

    c.step("chat_stream")
    text, parts, last = "", 0, None
    for part in client.chat(model=spec["chat_model"], messages=[USER], stream=True):
        parts += 1
        text += part.message.content or ""
        last = part
    c.check(text == spec["expect_text"], f"streamed text {text!r}")
    c.check(last is not None and last.done, "the last part is not done")
    c.check(parts >= 3, f"only {parts} parts: not streamed?")
    c.ok(f"{parts} parts")

    c.step("tool_call")
    r = client.chat(model=spec["tool_model"], messages=[USER], tools=tools)
    calls = r.message.tool_calls or []
    c.check(len(calls) == 1, f"tool_calls {calls!r}")
    call = calls[0]
    c.check(call.function.name == spec["tool_name"], f"name {call.function.name!r}")
    c.check(dict(call.function.arguments) == spec["tool_args"], f"arguments {call.function.arguments!r}")
    c.ok(call.function.name)

    c.step("tool_call_stream")
    streamed = []
    for part in client.chat(model=spec["tool_model"], messages=[USER], tools=tools, stream=True):
        streamed.extend(part.message.tool_calls or [])
    c.check(len(streamed) == 1, f"streamed tool_calls {streamed!r}")
    c.check(dict(streamed[0].function.arguments) == spec["tool_args"], f"arguments {streamed[0].function.arguments!r}")
    c.ok()

    c.step("tool_result")
    messages = [
        USER,
        r.message,
        {"role": "tool", "content": spec["tool_result"], "tool_name": call.function.name},
    ]
    r2 = client.chat(model=spec["followup_model"], messages=messages, tools=tools)
    c.check(r2.message.content == spec["followup_text"], f"content {r2.message.content!r}")
    c.ok()

    c.step("embed")
    r = client.embed(model=spec["embed_model"], input=spec["embed_inputs"])
    c.check(close(r.embeddings, spec["embed_expected"]), f"embeddings {r.embeddings!r}")
    one = client.embed(model=spec["embed_model"], input=spec["embed_inputs"][0])
    c.check(close(one.embeddings, spec["embed_expected"][:1]), f"embeddings {one.embeddings!r}")
    c.ok(f"{len(r.embeddings)} vectors")

    c.step("embeddings_legacy")
    r = client.embeddings(model=spec["embed_model"], prompt=spec["embed_inputs"][0])
    c.check(close([r.embedding], spec["embed_expected"][:1]), f"embedding {r.embedding!r}")
    c.ok()

    c.step("generate_suffix")
    r = client.generate(model=spec["chat_model"], prompt=spec["fim_prompt"], suffix=spec["fim_suffix"])
    c.check(r.response == spec["fim_expected"], f"response {r.response!r}")
    c.check(r.done, "done is not true")
    text = "".join(p.response for p in client.generate(
        model=spec["chat_model"], prompt=spec["fim_prompt"], suffix=spec["fim_suffix"], stream=True))
    c.check(text == spec["fim_expected"], f"streamed {text!r}")
    c.ok()

    c.step("error")
    try:
        client.chat(model=spec["error_model"], messages=[USER])
        c.check(False, "no error raised")
    except ollama.ResponseError as e:
        c.check(e.status_code == spec["error_status"], f"status {e.status_code}, error {e.error!r}")
        c.check(spec["error_contains"] in e.error, f"{spec['error_contains']!r} not in {e.error!r}")
        c.ok(f"{e.status_code}")

    if spec.get("api_key"):
        c.step("auth_error")
        wrong = ollama.Client(host=spec["base_url"], headers={"Authorization": "Bearer wrong-key"}, timeout=20.0)
        try:
            wrong.chat(model=spec["chat_model"], messages=[USER])
            c.check(False, "a wrong key was accepted")
        except ollama.ResponseError as e:
            c.check(e.status_code == 401, f"status {e.status_code}, error {e.error!r}")
            c.ok("401")

    return {"tool": call.function.name}


run(main)
