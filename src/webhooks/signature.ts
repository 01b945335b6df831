import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Webhook bodies are signed so the records system can tell they come from its gateway and were not replayed:
 *
 *   X-Seos-Gateway-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>
 *
 * The receiver recomputes the HMAC over the raw body bytes, compares in constant time, and refuses a `t` older
 * than its tolerance (we suggest 5 minutes). docs/webhooks.md shows it in a few lines.
 */
export const SIGNATURE_HEADER = 'x-seos-gateway-signature';

export function signWebhook(secret: string, body: Buffer | string, at = new Date()): string {
  const t = Math.floor(at.getTime() / 1000);
  const mac = createHmac('sha256', secret).update(`${t}.`).update(body).digest('hex');
  return `t=${t},v1=${mac}`;
}

export function verifyWebhookSignature(secret: string, body: Buffer | string, header: string, options: { now?: Date; toleranceSeconds?: number } = {}): boolean {
  const parts = Object.fromEntries(header.split(',').map((p) => p.trim().split('=', 2) as [string, string]));
  const t = Number(parts.t);
  if (!Number.isInteger(t) || !/^[0-9a-f]{64}$/.test(parts.v1 ?? '')) return false;
  const now = Math.floor((options.now ?? new Date()).getTime() / 1000);
  if (Math.abs(now - t) > (options.toleranceSeconds ?? 300)) return false;
  const expected = createHmac('sha256', secret).update(`${t}.`).update(body).digest();
  return timingSafeEqual(expected, Buffer.from(parts.v1, 'hex'));
}
