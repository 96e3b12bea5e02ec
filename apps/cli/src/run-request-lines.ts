/**
 * The request-line paragraph of `seesaw run --help`: what one input line may hold. Its own block
 * so the request fields and this text change together, apart from the flag table.
 */
export const RUN_REQUEST_LINES = `Input lines: {"prompt": "text" | [ids], "max_tokens", "temperature", "top_p", "top_k",
"seed", "stop", "stop_token_ids", "ignore_eos", "return_token_ids", "custom_id"} or OpenAI batch
lines {"custom_id", "method": "POST", "url": "/v1/completions", "body": {...}}.
Honoured OpenAI fields: n, lists of prompts, echo, logprobs/top_logprobs,
presence_penalty, frequency_penalty; others at their no-op values (stream: false, ...).`;
