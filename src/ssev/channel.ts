import { isGatewayError } from '../errors/index.ts';
import { OUTBOX_KIND, noLogger, type SsevChannelDeps } from './context.ts';
import { createSsevInbox } from './inbox.ts';
import { createSsevSender } from './send.ts';
import { createSsevStatusPoller, type DeliveryCheck } from './status.ts';
import { getSsevMessage } from './store.ts';

/**
 * SSEV as the gateway's second channel, behind the same records-system API, outbox, queue, retry and
 * dead-letter machinery as SEOS. One object the composition root builds from its parts:
 *
 *   const ssev = createSsevChannel({ db, client, spool, log, archive, schedule, onDelivered, onReceived, ... });
 *   engine handlers: { ...seos.handlers, ...ssev.handlers }; engine dead event: ssev.markDead(entry)
 *   api: app.register(ssevPushEndpoint, { channel: ssev, path: config.ssev.pushPath })
 *   ssev.start() / await ssev.stop()
 *
 * Sending is send.ts, delivery confirmation status.ts, receiving inbox.ts; this file adds the push
 * notifications and the timers.
 */
export type PushEvent = { readonly eventType: 'Received' | 'Delivered'; readonly messageId: number };

export type PushOutcome = 'taken' | 'delivered' | 'already-done' | 'pending' | 'ignored' | 'failed';

export function createSsevChannel(deps: SsevChannelDeps) {
  const logger = deps.logger ?? noLogger;
  const sender = createSsevSender(deps);
  const status = createSsevStatusPoller(deps);
  const inbox = createSsevInbox(deps);
  const timers: NodeJS.Timeout[] = [];
  const background = new Set<Promise<unknown>>();
  let stopped = false;

  /** Whether a push is about something we know of; an unknown one is logged and ignored by the endpoint. */
  function pushKnown(event: PushEvent): boolean {
    if (event.eventType === 'Delivered') return getSsevMessage(deps.db, 'out', event.messageId) !== undefined;
    return getSsevMessage(deps.db, 'in', event.messageId)?.state !== 'stored'; // a new message, or one we have not finished
  }

  /**
   * Acts on a push: Received → take that message now; Delivered → ask SSEV about that message and mark it
   * delivered when SSEV confirms. Never throws.
   */
  async function handlePush(event: PushEvent): Promise<PushOutcome> {
    try {
      if (event.eventType === 'Received') {
        if (getSsevMessage(deps.db, 'in', event.messageId)?.state === 'stored') return 'already-done';
        const result = await inbox.takeMessage(event.messageId);
        return result.outcome === 'taken' ? 'taken' : result.outcome === 'skipped' ? 'already-done' : 'failed';
      }
      const check: DeliveryCheck = await status.checkDelivered(event.messageId);
      if (check === 'unknown') {
        logger.info({ messageId: event.messageId }, 'ssev push about a message this gateway did not send; ignored');
        return 'ignored';
      }
      return check === 'already-delivered' ? 'already-done' : check;
    } catch (error) {
      // The code only: a fault text from SSEV may quote an identifier.
      logger.warn({ code: isGatewayError(error) ? error.code : 'error', messageId: event.messageId }, 'ssev push not handled now; polling will catch up');
      return 'failed';
    }
  }

  /** Runs a push in the background (the endpoint answers at once); stop() waits for it. */
  function handlePushLater(event: PushEvent): void {
    const p = handlePush(event);
    background.add(p);
    void p.finally(() => background.delete(p));
  }

  function every(ms: number, what: string, run: () => Promise<unknown>): void {
    const tick = () => {
      if (stopped) return;
      const p = run().catch((error) => logger.warn({ code: isGatewayError(error) ? error.code : 'error' }, `${what} failed; will retry`));
      background.add(p);
      void p.finally(() => {
        background.delete(p);
        if (!stopped) {
          const t = setTimeout(tick, ms);
          t.unref();
          timers.push(t);
        }
      });
    };
    tick();
  }

  return {
    /** Commits a document for SSEV with its outbox row; throws coded errors (limits, input) before anything is queued. */
    sendViaSsev: sender.sendViaSsev,
    /** The same checks sendViaSsev does first, for a caller that wants to validate without queueing. */
    checkLimits: sender.checkLimits,
    limits: sender.limits,
    /** For routing: the recipient's SSEV profile (cached), or null. */
    lookupProfile: sender.lookupProfile,
    handlers: { [OUTBOX_KIND]: sender.deliverSsevMessage } as const,
    deliverSsevMessage: sender.deliverSsevMessage,
    markDead: sender.markDead,
    pollSentStatus: status.pollSentStatus,
    checkDelivered: status.checkDelivered,
    pollInbox: inbox.pollInbox,
    takeMessage: inbox.takeMessage,
    pushKnown,
    handlePush,
    handlePushLater,
    /** Starts inbox polling and sent-status polling (each runs once at once, then on its interval). */
    start(): void {
      stopped = false;
      every(deps.pollIntervalMs ?? 5 * 60_000, 'ssev inbox poll', () => inbox.pollInbox());
      every(deps.statusPollIntervalMs ?? 15 * 60_000, 'ssev status poll', () => status.pollSentStatus());
    },
    /** Stops the timers and waits for work in flight. */
    async stop(): Promise<void> {
      stopped = true;
      for (const t of timers.splice(0)) clearTimeout(t);
      while (background.size > 0) await Promise.allSettled([...background]);
    },
  };
}

export type SsevChannel = ReturnType<typeof createSsevChannel>;
