/** Configuration: one validated GatewayConfig, read once at boot from an optional JSON file and the environment. */
export {
  loadConfig,
  describeConfig,
  isLoopbackHost,
  CONFIG_FILE_MAX_BYTES,
  DEFAULTS,
  LOG_LEVELS,
  type GatewayConfig,
  type SigningConfig,
  type LoadConfigOptions,
  type LogLevel,
} from './load-config.ts';
export { Secret } from './secret.ts';
export type { ExchangeConfig, SelfConfig, SeosEndpointConfig, SeosClientConfig, RegistryConfig, DeliveryConfig, TlsFiles, StaticParticipantConfig, PeerConfig } from './exchange-config.ts';
