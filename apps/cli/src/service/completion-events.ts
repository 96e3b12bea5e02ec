/**
 * The server-sent events of one streamed completion, in OpenAI's chunk shapes: `text_completion`
 * chunks with text pieces, or `chat.completion.chunk` deltas (the first of each choice with the
 * role); a finish chunk per choice; an optional usage chunk with no choices; then [DONE]. The
 * status line goes out with the first event, so an error before it is still a plain HTTP error.
 */
import type { ServerResponse } from 'node:http';
import { ApiError } from './http-errors.ts';

/** The server-sent events of one streamed completion (OpenAI's chunk objects). */
export class CompletionEvents {
  private isStarted = false;
  private readonly roleSent = new Set<number>();
  private readonly head: { id: string; object: string; created: number; model: string };

  constructor(
    private readonly response: ServerResponse,
    private readonly isChat: boolean,
    id: string,
    model: string,
  ) {
    const object = isChat ? 'chat.completion.chunk' : 'text_completion';
    this.head = { id, object, created: Math.floor(Date.now() / 1000), model };
  }

  get hasStarted(): boolean {
    return this.isStarted;
  }

  sendText(index: number, text: string): void {
    if (!this.isChat) {
      this.send({ choices: [{ index, text, finish_reason: null, logprobs: null }] });
      return;
    }
    // A chat choice's first delta carries the role, as OpenAI's do.
    const role = this.roleSent.has(index) ? {} : { role: 'assistant' };
    this.roleSent.add(index);
    this.send({
      choices: [{ index, delta: { ...role, content: text }, finish_reason: null, logprobs: null }],
    });
  }

  sendFinish(index: number, finishReason: string): void {
    if (!this.isChat) {
      this.send({ choices: [{ index, text: '', finish_reason: finishReason, logprobs: null }] });
      return;
    }
    const role = this.roleSent.has(index) ? {} : { role: 'assistant', content: '' };
    this.roleSent.add(index);
    this.send({ choices: [{ index, delta: role, finish_reason: finishReason, logprobs: null }] });
  }

  end(usage: unknown): void {
    if (usage !== null) this.send({ choices: [], usage });
    this.start();
    this.response.end('data: [DONE]\n\n');
  }

  /** Ends the stream with an error event (what OpenAI's client raises as an APIError). */
  fail(error: Error): void {
    const code = error instanceof ApiError ? error.code : 'server_error';
    this.send({ error: { message: error.message, type: 'server_error', code } });
    this.response.end();
  }

  private send(data: object): void {
    this.start();
    this.response.write(`data: ${JSON.stringify({ ...this.head, ...data })}\n\n`);
  }

  private start(): void {
    if (this.isStarted) return;
    this.isStarted = true;
    this.response.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
  }
}
