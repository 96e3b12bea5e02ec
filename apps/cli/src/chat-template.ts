/**
 * The model's chat template (`chat_template` in tokenizer_config.json), rendered with
 * @huggingface/jinja the way Hugging Face's `apply_chat_template` does: the messages, the
 * special tokens by name, and `add_generation_prompt: true`, so the text ends where the
 * assistant's answer begins. The template writes any BOS itself, so the rendered text is
 * tokenized without adding special tokens.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Template } from '@huggingface/jinja';
import { describeValue, type LineProblems } from './line-problems.ts';

export interface ChatMessage {
  role: string;
  content: string;
}

/** What the line parser needs to turn chat messages into prompt token ids. */
export interface ChatPrompter {
  render(messages: ChatMessage[]): string;
  /** Token ids of rendered text, without special tokens added (the template wrote them). */
  encode(text: string): number[];
}

/** A special token as tokenizer_config.json writes it: a string or `{ "content": ... }`. */
function tokenText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { content?: unknown }).content === 'string'
  )
    return (value as { content: string }).content;
  return '';
}

/** The default template of a config: a string, or the one named "default" in a list. */
function templateSource(config: Record<string, unknown>): string | null {
  const value = config.chat_template;
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) {
    const named = value.find((entry) => entry?.name === 'default') ?? value[0];
    return typeof named?.template === 'string' ? named.template : null;
  }
  return null;
}

export class ChatTemplate {
  private constructor(
    private readonly template: Template,
    private readonly specialTokens: Record<string, string>,
  ) {}

  /** The template of a Hugging Face model directory, or null when it has none. */
  static load(modelDir: string): ChatTemplate | null {
    const path = join(modelDir, 'tokenizer_config.json');
    if (!existsSync(path)) return null;
    const config = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
    return ChatTemplate.fromConfig(config);
  }

  static fromConfig(config: Record<string, unknown>): ChatTemplate | null {
    const source = templateSource(config);
    if (source === null) return null;
    return new ChatTemplate(new Template(source), {
      bos_token: tokenText(config.bos_token),
      eos_token: tokenText(config.eos_token),
      unk_token: tokenText(config.unk_token),
      pad_token: tokenText(config.pad_token),
    });
  }

  render(messages: ChatMessage[]): string {
    return this.template.render({ messages, add_generation_prompt: true, ...this.specialTokens });
  }
}

/** Text of one message's content: a string, or OpenAI's list of `{type: "text", text}` parts. */
function readContent(value: unknown, index: number, problems: LineProblems): string | null {
  if (typeof value === 'string') return value;
  if (Array.isArray(value) && value.every((part) => part?.type === 'text' && typeof part.text === 'string')) {
    return value.map((part) => part.text).join('');
  }
  problems.add(
    `messages[${index}].content must be a string or a list of {"type": "text", "text": ...} parts, got ${describeValue(value)}`,
  );
  return null;
}

/** Checks `messages` as OpenAI defines it (roles and text content); null after adding problems. */
export function readChatMessages(value: unknown, problems: LineProblems): ChatMessage[] | null {
  if (!Array.isArray(value) || value.length === 0) {
    problems.add(
      `messages must be a non-empty array of {"role", "content"} objects, got ${describeValue(value)}`,
    );
    return null;
  }
  const messages: ChatMessage[] = [];
  value.forEach((message, index) => {
    if (typeof message !== 'object' || message === null || typeof message.role !== 'string') {
      problems.add(
        `messages[${index}] must be an object with a string "role", got ${describeValue(message)}`,
      );
      return;
    }
    const content = readContent(message.content, index, problems);
    if (content !== null) messages.push({ role: message.role, content });
  });
  return messages.length === value.length ? messages : null;
}

/** The chat prompter of a model directory: its template with its tokenizer, or null without either. */
export function chatPrompterFor(
  modelDir: string,
  tokenizer: { encodeWithoutSpecialTokens(text: string): number[] } | null,
): ChatPrompter | null {
  const template =
    tokenizer === null || !statSync(modelDir).isDirectory() ? null : ChatTemplate.load(modelDir);
  if (template === null || tokenizer === null) return null;
  return {
    render: (messages) => template.render(messages),
    encode: (text) => tokenizer.encodeWithoutSpecialTokens(text),
  };
}
