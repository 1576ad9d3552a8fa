"""End-to-end check with the OpenAI Agents SDK: an agent with one function tool runs through
the gateway's /v1/responses (the SDK's default model API) until it has a final answer."""

import asyncio

from agents import Agent, OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled
from openai import AsyncOpenAI

from common import run


async def both_runs(spec, c, agent, calls):
    c.step("agent_run")
    result = await Runner.run(agent, "What is the weather in Oslo?", max_turns=4)
    c.check(calls == [spec["tool_args"]["city"]], f"tool calls {calls!r}")
    c.check(result.final_output == spec["followup_text"], f"final output {result.final_output!r}")
    c.ok(result.final_output)

    c.step("agent_run_streamed")
    calls.clear()
    r = Runner.run_streamed(agent, "What is the weather in Oslo?", max_turns=4)
    kinds = [e.type async for e in r.stream_events()]
    c.check(calls == [spec["tool_args"]["city"]], f"tool calls {calls!r}")
    c.check(r.final_output == spec["followup_text"], f"final output {r.final_output!r}")
    c.check("raw_response_event" in kinds, f"event kinds {set(kinds)}")
    c.ok(f"{len(kinds)} events")


def main(spec, c):
    set_tracing_disabled(True)
    client = AsyncOpenAI(
        base_url=spec["base_url"] + "/v1",
        api_key=spec["api_key"],
        max_retries=0,
        timeout=20.0,
    )
    calls = []

    @function_tool
    def get_weather(city: str) -> str:
        """Current weather for a city."""
        calls.append(city)
        return spec["tool_result"]

    agent = Agent(
        name="weather",
        instructions="Answer with the weather tool.",
        tools=[get_weather],
        model=OpenAIResponsesModel(model=spec["tool_model"], openai_client=client),
    )

    # One event loop for both runs: the client's connection pool belongs to it.
    asyncio.run(both_runs(spec, c, agent, calls))
    return {"tool_calls": 1}


if __name__ == "__main__":
    run(main)
