import { readBoolean, readObject, type FieldReaders } from './readers.ts';

/**
 * The `ssev` section of the configuration. Add fields to SsevConfig and SsevInput, a reader in SSEV_READERS and a
 * default in completeSsev; load-config.ts merges the section into GatewayConfig.
 */
export interface SsevConfig {
  readonly enabled: boolean;
}

export interface SsevSection {
  readonly ssev: SsevConfig;
}

export interface SsevInput {
  ssev?: Partial<SsevConfig>;
}

export const SSEV_READERS: FieldReaders<SsevInput> = {
  ssev: (value, path) => readObject<SsevConfig>(value, path, { enabled: readBoolean }),
};

export function completeSsev(input: SsevInput): SsevSection {
  return { ssev: { enabled: false, ...input.ssev } };
}
