/**
 * Incremental text of one streamed choice: turns the outputs so far into the next piece of text
 * that is safe to send, so that the pieces concatenated equal the choice's final text exactly.
 *
 * Why text is held back:
 * - The last token's text may still change: a UTF-8 character split over byte tokens decodes to
 *   U+FFFD until its last byte arrives, and SentencePiece / cleanup rules can rewrite the end of
 *   the text when the next piece comes. So only the text of all tokens but the newest is sent,
 *   without trailing U+FFFD, and only when it extends what was already sent.
 * - Stop strings: the answer ends before the first stop string, so text that is (or may become)
 *   part of one is not sent until the request ends; the final text settles it.
 * The final call sends whatever remains of the final text (from the output record).
 */

const REPLACEMENT_CHARACTER = '\uFFFD';

export class TextDeltas {
  private sent = '';
  private readonly holdBack: number;

  constructor(
    private readonly decode: (ids: number[]) => string,
    private readonly stops: readonly string[],
    /** Text before the generated text (echo's prompt), sent with the first piece. */
    private readonly prefix = '',
  ) {
    this.holdBack = Math.max(0, ...stops.map((stop) => stop.length - 1));
  }

  /** The next piece to send for the outputs so far ('' when nothing new is safe yet). */
  next(outputTokenIds: readonly number[]): string {
    if (outputTokenIds.length < 2) return '';
    const decoded = this.decode(outputTokenIds.slice(0, -1) as number[]);
    let complete = decoded.length;
    while (complete > 0 && decoded[complete - 1] === REPLACEMENT_CHARACTER) complete--;
    // The last holdBack characters may be the start of a stop string still to complete.
    let end = complete - this.holdBack;
    for (const stop of this.stops) {
      const index = decoded.slice(0, complete).indexOf(stop);
      if (index >= 0) end = Math.min(end, index);
    }
    const text = this.prefix + decoded.slice(0, Math.max(0, end));
    if (text.length <= this.sent.length || !text.startsWith(this.sent)) return '';
    const piece = text.slice(this.sent.length);
    this.sent = text;
    return piece;
  }

  /** The rest of `finalText` (the choice's text as its record has it). */
  finish(finalText: string): string {
    if (!finalText.startsWith(this.sent)) {
      throw new Error(
        `streamed text ${JSON.stringify(this.sent)} is not a prefix of the final text ${JSON.stringify(finalText)}`,
      );
    }
    const piece = finalText.slice(this.sent.length);
    this.sent = finalText;
    return piece;
  }
}
