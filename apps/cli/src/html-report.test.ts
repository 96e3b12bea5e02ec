import type { TraceEvent } from '@seesaw/coordinator';
import { describe, expect, it } from 'vitest';
import { escapeHtml, niceStep, renderReport, renderReportOfRuns } from './html-report.ts';

function seesawRun(): TraceEvent[] {
  const events: TraceEvent[] = [];
  let t = 0;
  for (let i = 0; i < 5; i++, t += 400) {
    events.push({
      track: 'replica 0',
      name: 'prefill step',
      category: 'prefill',
      startMs: t,
      durationMs: 380,
      args: { numTokens: 512, numSeqs: 4, phase: 'prefill' },
    });
  }
  events.push({
    track: 'replica 0 reshard',
    name: 'P2 -> T2',
    category: 'reshard',
    startMs: t,
    durationMs: 300,
  });
  t += 300;
  for (let i = 0; i < 40; i++, t += 50) {
    events.push({
      track: 'replica 0',
      name: 'decode step',
      category: 'decode',
      startMs: t,
      durationMs: 45,
      args: { numTokens: 16, numSeqs: 16, phase: 'decode' },
    });
  }
  return events;
}

const SUMMARY = {
  title: 'seesaw bench <tiny> & friends',
  subtitle: 'tiny model, 16 prompts',
  table: [
    ['', 'seesaw:P2-T2'],
    ['Total tokens/s', '1234.50'],
    ['Phase switches', '1'],
  ],
};

describe('renderReport', () => {
  it('is one self-contained HTML page with no URL, script or external reference', () => {
    const html = renderReport(seesawRun(), SUMMARY, 1000);
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(html.trimEnd().endsWith('</html>')).toBe(true);
    expect(html.toLowerCase()).not.toContain('http');
    expect(html.toLowerCase()).not.toContain('<script');
    expect(html).not.toMatch(/\b(src|href)=/);
    expect(html).not.toContain('url(');
    // Every opened svg is closed.
    expect(html.match(/<svg /g)?.length).toBe(2);
    expect(html.match(/<\/svg>/g)?.length).toBe(2);
  });

  it('has the summary table, escaped, and the throughput and phase charts', () => {
    const html = renderReport(seesawRun(), SUMMARY, 1000);
    expect(html).toContain('<title>seesaw bench &lt;tiny&gt; &amp; friends</title>');
    expect(html).toContain('<td>Total tokens/s</td><td>1234.50</td>');
    expect(html).toContain('<th>seesaw:P2-T2</th>');
    expect(html).toContain('aria-label="tokens per second over time"');
    expect(html).toContain('aria-label="phase timeline"');
    // Three bands on replica 0: prefill, re-shard, decode.
    const timeline = html.slice(html.indexOf('aria-label="phase timeline"'));
    expect(timeline.match(/<rect /g)?.length).toBe(3);
    expect(timeline).toContain('>replica 0</text>');
    expect(timeline).toMatch(/<title>reshard 2 s - 2\.30 s<\/title>/);
    // Bucket [0, 1 s): two whole 380 ms steps of 512 tokens and 200 ms of the third = 1293.5 tokens.
    expect(html).toContain('<title>0 s: 1293.5 prefill + 0 decode tokens/s</title>');
    // Bucket [3 s, 4 s): 20 decode steps of 16 tokens.
    expect(html).toContain('<title>3 s: 0 prefill + 320 decode tokens/s</title>');
  });

  it('gives each run of a comparison its section and says when a run recorded no steps', () => {
    const html = renderReportOfRuns(
      [
        { name: 'seesaw:P2-T2', events: seesawRun() },
        { name: 'static:T2', events: [] },
      ],
      SUMMARY,
    );
    expect(html).toContain('<h2>seesaw:P2-T2</h2>');
    expect(html).toContain('<h2>static:T2</h2>');
    expect(html).toContain('No steps were recorded.');
    expect(html.toLowerCase()).not.toContain('http');
  });

  it("draws every run of a comparison on the longest run's time axis", () => {
    const short = seesawRun().filter((event) => event.startMs < 2000);
    const html = renderReportOfRuns(
      [
        { name: 'long', events: seesawRun() },
        { name: 'short', events: short },
      ],
      SUMMARY,
    );
    const [, longPart, shortPart] = html.split('<h2>');
    // Both time axes run to the long run's 4.3 s: the 4 s tick is in each.
    for (const part of [longPart, shortPart]) expect(part.match(/>4 s<\/text>/g)?.length).toBe(2);
  });
});

describe('report helpers', () => {
  it('uses 1 s buckets from 10 s up and about ten buckets below', async () => {
    const { chooseBucketMs } = await import('./report-series.ts');
    expect(chooseBucketMs(60_000)).toBe(1000);
    expect(chooseBucketMs(10_000)).toBe(1000);
    expect(chooseBucketMs(4300)).toBe(500);
    expect(chooseBucketMs(420)).toBe(50);
    expect(chooseBucketMs(3)).toBe(10);
    const html = renderReport(seesawRun(), SUMMARY);
    expect(html).toContain('Throughput (tokens/s, 0.50 s buckets)');
  });

  it('picks 1/2/5 steps', () => {
    expect(niceStep(10)).toBe(2);
    expect(niceStep(7.3)).toBe(2);
    expect(niceStep(1000, 4)).toBe(500);
    expect(niceStep(0)).toBe(1);
    expect(niceStep(0.9)).toBe(0.2);
  });

  it('escapes markup', () => {
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  });
});
