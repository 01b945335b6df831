import { fail, readBoolean, readObject, readSecret, type FieldReaders, type Reader } from './readers.ts';
import type { Secret } from './secret.ts';

/** Webhooks to the records system: where to POST, with which HMAC secret, which events. */
export const WEBHOOK_EVENTS = ['document.received', 'document.status', 'delivery.failed'] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

export interface WebhookConfig {
  readonly id: string;
  readonly url: string;
  readonly secret: Secret;
  readonly events: readonly WebhookEvent[];
  readonly timeoutMs: number;
  /** Plain http only for a records system on the same host or behind a TLS-terminating proxy. */
  readonly allowInsecureHttp: boolean;
}

export interface WebhooksSection {
  readonly webhooks: readonly WebhookConfig[];
}

export interface WebhooksInput {
  webhooks?: WebhookConfig[];
}

const readWebhook: Reader<WebhookConfig> = (value, path) => {
  const w = readObject<WebhookConfig>(value, path, {
    id: (v, p) => { if (typeof v !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(v)) fail(p, 'expected an id of letters, digits, _ and -'); return v; },
    url: (v, p) => {
      if (typeof v !== 'string') fail(p, 'expected an http(s) URL');
      let u: URL;
      try { u = new URL(v); } catch { fail(p, 'expected an http(s) URL'); }
      if (u.protocol !== 'https:' && u.protocol !== 'http:') fail(p, 'expected an http(s) URL');
      return v;
    },
    secret: (v, p) => { const s = readSecret(v, p); if (s.reveal().length < 16) fail(p, 'expected a secret of at least 16 characters'); return s; },
    events: (v, p) => {
      if (!Array.isArray(v) || v.length === 0) fail(p, `expected a non-empty array of ${WEBHOOK_EVENTS.join(', ')}`);
      return v.map((e, i) => { if (!(WEBHOOK_EVENTS as readonly unknown[]).includes(e)) fail(`${p}[${i}]`, `expected one of ${WEBHOOK_EVENTS.join(', ')}`); return e as WebhookEvent; });
    },
    timeoutMs: (v, p) => { if (typeof v !== 'number' || !Number.isInteger(v) || v < 100 || v > 120_000) fail(p, 'expected an integer from 100 to 120000'); return v; },
    allowInsecureHttp: readBoolean,
  });
  for (const key of ['id', 'url', 'secret'] as const) if (w[key] === undefined) fail(`${path}.${key}`, 'required');
  if (w.url!.startsWith('http:') && !w.allowInsecureHttp) fail(`${path}.url`, 'expected https:// (or set allowInsecureHttp for a records system on this host)');
  return { events: [...WEBHOOK_EVENTS], timeoutMs: 10_000, allowInsecureHttp: false, ...w } as WebhookConfig;
};

export const WEBHOOKS_READERS: FieldReaders<WebhooksInput> = {
  webhooks: (value, path) => {
    if (!Array.isArray(value) || value.length > 50) fail(path, 'expected an array of at most 50 webhooks');
    const list = value.map((v, i) => readWebhook(v, `${path}[${i}]`));
    const ids = new Set<string>();
    list.forEach((w, i) => { if (ids.has(w.id)) fail(`${path}[${i}].id`, 'duplicate id'); ids.add(w.id); });
    return list;
  },
};

export function completeWebhooks(input: WebhooksInput): WebhooksSection {
  return { webhooks: input.webhooks ?? [] };
}
