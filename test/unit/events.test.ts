// The event recorder (src/k8s/events.ts) over a fake events.k8s.io API: series, truncation, the
// bounded write queue and its Warnings first, cluster-scoped objects.
import { jest } from '@jest/globals';
import { ApiException, type EventsV1Event } from '@kubernetes/client-node';
import { EventRecorder, objectReference, truncateUtf8, type EventRecorderOptions, type EventsApi } from '../../src/k8s/events.js';
import { recordingLogger } from '../support/logs.js';

/** A fake events.k8s.io API recording what the recorder sends. */
class FakeEventsApi {
  readonly created: EventsV1Event[] = [];
  readonly patches: Array<{ name: string; body: unknown; contentType: unknown }> = [];
  failCreate = false;
  patchNotFound = false;

  createNamespacedEvent = async (p: { namespace: string; body: EventsV1Event }): Promise<EventsV1Event> => {
    if (this.failCreate) throw new ApiException(403, 'forbidden', { message: 'nope' }, {});
    this.created.push(JSON.parse(JSON.stringify(p.body)) as EventsV1Event);
    return p.body;
  };

  patchNamespacedEvent = async (p: { name: string; body: unknown }, options?: { middleware?: unknown[] }): Promise<EventsV1Event> => {
    if (this.patchNotFound) {
      this.patchNotFound = false;
      throw new ApiException(404, 'not found', {}, {});
    }
    this.patches.push({ name: p.name, body: JSON.parse(JSON.stringify(p.body)), contentType: options?.middleware?.length });
    return {} as EventsV1Event;
  };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

/**
 * Holds every create until the test lets it through; counts the most creates in flight at once.
 * `releaseUntil(n)` lets held creates through until `n` Events exist, `releaseNext()` waits for
 * the next create to arrive and lets it through.
 */
function holdCreates(api: FakeEventsApi): { most: () => number; releaseUntil: (n: number) => Promise<void>; releaseNext: () => Promise<void> } {
  let inFlight = 0;
  let most = 0;
  const gates: Array<() => void> = [];
  const create = api.createNamespacedEvent;
  api.createNamespacedEvent = async (p) => {
    inFlight++;
    most = Math.max(most, inFlight);
    await new Promise<void>((resolve) => gates.push(resolve));
    inFlight--;
    return create(p);
  };
  const openAll = () => gates.splice(0).forEach((open) => open());
  return {
    most: () => most,
    async releaseUntil(n) {
      while (api.created.length < n) {
        openAll();
        await tick();
      }
    },
    async releaseNext() {
      while (gates.length === 0) await tick();
      openAll();
    },
  };
}

describe('EventRecorder (fake API)', () => {
  const widget = { apiVersion: 'rpa-access.io/v1alpha1', kind: 'User', metadata: { name: 'jo', namespace: 'fin', uid: 'u1', resourceVersion: '7' } };

  function recorder(api: FakeEventsApi, now: () => number, extra: Partial<EventRecorderOptions> = {}): EventRecorder {
    return new EventRecorder({ api: api as unknown as EventsApi, reportingInstance: 'op-0', flushIntervalMs: 1_000, now, ...extra });
  }

  it('creates an event with regarding, reporting fields and a MicroTime eventTime', async () => {
    const api = new FakeEventsApi();
    const r = recorder(api, () => Date.parse('2024-05-01T10:00:00.123Z'));
    r.record(widget, 'Warning', 'GroupNotFound', 'Apply', 'Group "ops" does not exist');
    await r.flush();
    expect(api.created).toHaveLength(1);
    expect(api.created[0]).toMatchObject({
      apiVersion: 'events.k8s.io/v1',
      kind: 'Event',
      metadata: { namespace: 'fin' },
      eventTime: '2024-05-01T10:00:00.123000Z',
      regarding: { apiVersion: 'rpa-access.io/v1alpha1', kind: 'User', name: 'jo', namespace: 'fin', uid: 'u1', resourceVersion: '7' },
      type: 'Warning',
      reason: 'GroupNotFound',
      action: 'Apply',
      note: 'Group "ops" does not exist',
      reportingController: 'rpa-access.io/operator',
      reportingInstance: 'op-0',
    });
    expect(api.created[0]!.metadata!.name).toMatch(/^jo\.[0-9a-f]+$/);
  });

  it('counts identical events in a series, patched at most once per flush interval', async () => {
    jest.useFakeTimers({ doNotFake: ['queueMicrotask', 'nextTick', 'setImmediate'] });
    try {
      const api = new FakeEventsApi();
      const r = recorder(api, () => Date.now());
      for (let i = 0; i < 5; i++) r.record(widget, 'Warning', 'Refused', 'Apply', 'same');
      await jest.advanceTimersByTimeAsync(0);
      expect(api.created).toHaveLength(1);
      expect(api.patches).toHaveLength(0);
      await jest.advanceTimersByTimeAsync(1_000);
      expect(api.patches).toHaveLength(1);
      expect(api.patches[0]!.body).toMatchObject({ series: { count: 5 } });
      expect(api.patches[0]!.name).toBe(api.created[0]!.metadata!.name);
      expect(api.patches[0]!.contentType).toBe(1); // the merge-patch Content-Type middleware

      r.record(widget, 'Warning', 'Refused', 'Apply', 'same');
      await jest.advanceTimersByTimeAsync(999);
      expect(api.patches).toHaveLength(1);
      await jest.advanceTimersByTimeAsync(1);
      expect(api.patches.map((p) => (p.body as { series: { count: number } }).series.count)).toEqual([5, 6]);

      // A different note is a different event; so is the same one after the series window.
      r.record(widget, 'Warning', 'Refused', 'Apply', 'other');
      await jest.advanceTimersByTimeAsync(7 * 60_000);
      r.record(widget, 'Warning', 'Refused', 'Apply', 'same');
      await r.flush();
      expect(api.created.map((e) => e.note)).toEqual(['same', 'other', 'same']);
    } finally {
      jest.useRealTimers();
    }
  });

  it('starts a new event when the old one is gone', async () => {
    const api = new FakeEventsApi();
    const r = recorder(api, () => Date.now(), { flushIntervalMs: 0 });
    r.record(widget, 'Normal', 'Applied', 'Apply', 'ok');
    await r.flush();
    api.patchNotFound = true;
    r.record(widget, 'Normal', 'Applied', 'Apply', 'ok');
    await r.flush();
    expect(api.created).toHaveLength(2);
    expect(api.created[1]!.series).toMatchObject({ count: 2 });
  });

  it('truncates the note to 1024 bytes of UTF-8 and never throws into the caller', async () => {
    const api = new FakeEventsApi();
    const { log, at } = recordingLogger();
    const r = recorder(api, () => Date.now(), { log });
    r.record(widget, 'Normal', 'Long', 'Apply', 'é'.repeat(2_000));
    await r.flush();
    const note = api.created[0]!.note!;
    expect(Buffer.byteLength(note, 'utf8')).toBeLessThanOrEqual(1024);
    expect(note.endsWith('…')).toBe(true);
    expect(truncateUtf8('short', 1024)).toBe('short');

    api.failCreate = true;
    expect(() => r.record(widget, 'Warning', 'X', 'Y', 'z')).not.toThrow();
    await r.close();
    expect(at('warn').map((r) => r.msg)).toEqual(['could not create event']);
    r.record(widget, 'Warning', 'Closed', 'Y', 'ignored');
    expect(api.created).toHaveLength(1);
  });

  it('queues writes behind a few writers, drops (counted, logged once) when the queue is full, and never blocks the caller', async () => {
    const api = new FakeEventsApi();
    const { most, releaseUntil, releaseNext } = holdCreates(api);
    const { log, at } = recordingLogger();
    let drops = 0;
    const r = recorder(api, () => Date.now(), { maxInFlight: 2, maxQueued: 3, log, onDrop: () => drops++ });
    // Seven different events at once: 2 sent, 3 queued, 2 dropped; record() returns at once each time.
    for (let i = 0; i < 7; i++) expect(r.record(widget, 'Normal', 'Applied', 'Apply', `change ${i}`)).toBeUndefined();
    await tick();
    expect(most()).toBe(2);
    expect(r.dropped).toBe(2);
    expect(drops).toBe(2);
    expect(r.backlog).toBe(5);
    expect(at('warn').map((r) => r.msg)).toEqual(['event write queue full: dropping events (the API server is slow or unreachable)']);
    await releaseUntil(5);
    await r.flush();
    expect(most()).toBe(2);
    expect(api.created.map((e) => e.note)).toEqual(['change 0', 'change 1', 'change 2', 'change 3', 'change 4']);
    // A dropped event is not remembered as a series: its next occurrence is created.
    r.record(widget, 'Normal', 'Applied', 'Apply', 'change 6');
    await releaseNext();
    await r.flush();
    expect(api.created.map((e) => e.note)).toContain('change 6');
    expect(api.patches).toHaveLength(0);
  });

  it('sends Warnings before queued Normal writes, and a full queue drops a Normal write rather than a Warning', async () => {
    const api = new FakeEventsApi();
    const { releaseUntil, releaseNext } = holdCreates(api);
    const drops: string[] = [];
    const r = recorder(api, () => Date.now(), { maxInFlight: 1, maxQueued: 3, onDrop: (type) => drops.push(type) });
    // A flood of Normal ones (a cold start on a fresh store) with Warnings among them.
    r.record(widget, 'Normal', 'Created', 'Apply', 'n1'); // sent at once
    r.record(widget, 'Normal', 'Created', 'Apply', 'n2');
    r.record(widget, 'Normal', 'Created', 'Apply', 'n3');
    r.record(widget, 'Warning', 'SingleOwner', 'Apply', 'w1'); // the queue is now full
    r.record(widget, 'Warning', 'SingleOwner', 'Apply', 'w2'); // pushes n3 out
    r.record(widget, 'Warning', 'SingleOwner', 'Apply', 'w3'); // pushes n2 out
    r.record(widget, 'Warning', 'SingleOwner', 'Apply', 'w4'); // only Warnings queued: dropped itself
    r.record(widget, 'Normal', 'Created', 'Apply', 'n4'); // full: dropped
    await tick();
    expect(r.dropped).toBe(4);
    expect(drops).toEqual(['Normal', 'Normal', 'Warning', 'Normal']);
    expect(r.backlog).toBe(4);
    await releaseUntil(4);
    await r.flush();
    expect(api.created.map((e) => e.note)).toEqual(['n1', 'w1', 'w2', 'w3']);
    // A pushed-out event is not remembered as a series either: its next occurrence is created.
    r.record(widget, 'Normal', 'Created', 'Apply', 'n3');
    await releaseNext();
    await r.flush();
    expect(api.created.map((e) => e.note)).toEqual(['n1', 'w1', 'w2', 'w3', 'n3']);
    expect(api.patches).toHaveLength(0);
  });

  it('a queued Warning is sent before the Normal writes queued ahead of it', async () => {
    const api = new FakeEventsApi();
    const { releaseUntil } = holdCreates(api);
    const r = recorder(api, () => Date.now(), { maxInFlight: 1 });
    r.record(widget, 'Normal', 'Created', 'Apply', 'n1'); // sent at once
    r.record(widget, 'Normal', 'Created', 'Apply', 'n2');
    r.record(widget, 'Normal', 'Created', 'Apply', 'n3');
    r.record(widget, 'Warning', 'SingleOwner', 'Apply', 'w1');
    await releaseUntil(4);
    await r.flush();
    expect(api.created.map((e) => e.note)).toEqual(['n1', 'w1', 'n2', 'n3']);
    expect(r.dropped).toBe(0);
  });

  it('sends one write at a time by default, as client-go\'s broadcaster: Events wait, reconciles do not', async () => {
    const api = new FakeEventsApi();
    const { most, releaseUntil } = holdCreates(api);
    const r = recorder(api, () => Date.now());
    for (let i = 0; i < 4; i++) r.record(widget, 'Normal', 'Created', 'Apply', `object ${i}`);
    await releaseUntil(4);
    await r.flush();
    expect(most()).toBe(1);
    expect(r.dropped).toBe(0);
  });

  it('a repeat of the same reason and note for the same object patches the existing Event, never creates another', async () => {
    const api = new FakeEventsApi();
    const r = recorder(api, () => Date.now(), { flushIntervalMs: 0 });
    r.record(widget, 'Warning', 'SingleOwner', 'Apply', 'refused');
    await r.flush();
    r.record({ ...widget, metadata: { ...widget.metadata, resourceVersion: '8' } }, 'Warning', 'SingleOwner', 'Apply', 'refused');
    await r.flush();
    r.record(widget, 'Warning', 'SingleOwner', 'Apply', 'refused');
    await r.flush();
    expect(api.created).toHaveLength(1);
    expect(api.patches.map((p) => [p.name, (p.body as { series: { count: number } }).series.count])).toEqual([
      [api.created[0]!.metadata!.name, 2],
      [api.created[0]!.metadata!.name, 3],
    ]);
  });

  it('puts events about cluster-scoped objects in kube-system', async () => {
    const api = new FakeEventsApi();
    const r = recorder(api, () => Date.now());
    r.record({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'fin', uid: 'n1' } }, 'Normal', 'TenantReady', 'Bootstrap', 'ok');
    await r.flush();
    expect(api.created[0]!.metadata!.namespace).toBe('kube-system');
    expect(objectReference({ kind: 'Namespace', metadata: { name: 'fin' } })).toEqual({ kind: 'Namespace', name: 'fin' });
  });
});
