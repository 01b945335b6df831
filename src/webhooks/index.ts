export { SIGNATURE_HEADER, signWebhook, verifyWebhookSignature } from './signature.ts';
export { WEBHOOK_KIND, createWebhookHandler, createWebhookNotifier, type WebhookBody } from './webhooks.ts';
