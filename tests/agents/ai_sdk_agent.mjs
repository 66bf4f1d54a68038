// The Vercel AI SDK as an application uses it: one text turn, or a tool round (the model calls
// `get_secret`, the SDK runs it and sends the result back), through the gateway.
//
// Environment: LLMROUTE_URL, LLMROUTE_TOKEN, AGENT_PROVIDER (openai-chat | openai-responses | anthropic),
// AGENT_MODEL, AGENT_MODE (text | tool), AGENT_STREAM (0 | 1), AGENT_REASONING (0 | 1), AGENT_STORE (0 | 1).
// Prints one JSON line: {"text": ..., "steps": N, "toolResults": [...]}; exits 1 on any error.
import { generateText, jsonSchema, stepCountIs, streamText, tool } from "ai";
import { createAnthropic } from "@ai-sdk/anthropic";
import { createOpenAI } from "@ai-sdk/openai";

const env = process.env;
const base = env.LLMROUTE_URL;
const apiKey = env.LLMROUTE_TOKEN;
const kind = env.AGENT_PROVIDER;
const modelName = env.AGENT_MODEL;
const reasoning = env.AGENT_REASONING === "1";

let model;
let providerOptions = {};
if (kind === "anthropic") {
  model = createAnthropic({ baseURL: `${base}/v1`, apiKey })(modelName);
  if (reasoning) providerOptions = { anthropic: { thinking: { type: "enabled", budgetTokens: 1024 } } };
} else {
  const openai = createOpenAI({ baseURL: `${base}/v1`, apiKey });
  model = kind === "openai-chat" ? openai.chat(modelName) : openai.responses(modelName);
  if (reasoning) providerOptions = { openai: { reasoningEffort: "low", reasoningSummary: "auto" } };
  // A model name the SDK does not know as a reasoning model (routed to Claude): say it reasons.
  if (reasoning && kind === "openai-responses") providerOptions.openai.forceReasoning = true;
  // AGENT_STORE=0: store=false, the SDK then sends reasoning items back whole instead of item_reference.
  if (env.AGENT_STORE === "0") providerOptions.openai = { ...providerOptions.openai, store: false };
}

const tools = {
  get_secret: tool({
    description: "Returns the secret the user asks for.",
    inputSchema: jsonSchema({ type: "object", properties: {}, additionalProperties: false }),
    execute: async () => env.AGENT_SECRET,
  }),
};

const request = {
  model,
  prompt: env.AGENT_MODE === "tool" ? "What is the secret? Use the tool." : "Say hello.",
  maxOutputTokens: 2000,
  providerOptions,
  ...(env.AGENT_MODE === "tool" ? { tools, stopWhen: stepCountIs(3) } : {}),
};

try {
  let text, steps;
  if (env.AGENT_STREAM === "1") {
    const result = streamText({ ...request, onError: ({ error }) => { throw error; } });
    text = "";
    for await (const part of result.textStream) text += part;
    steps = await result.steps;
  } else {
    const result = await generateText(request);
    text = result.text;
    steps = result.steps;
  }
  const toolResults = steps.flatMap((step) => step.toolResults.map((r) => r.output));
  console.log(JSON.stringify({ text, steps: steps.length, toolResults }));
} catch (error) {
  console.error(String(error?.stack ?? error));
  if (error?.responseBody) console.error(error.responseBody);
  process.exit(1);
}
