import { readBoolean, readObject, type FieldReaders } from './readers.ts';

/**
 * The `ejournal` section of the configuration. Add fields to EjournalConfig and EjournalInput, a reader in EJOURNAL_READERS and a
 * default in completeEjournal; load-config.ts merges the section into GatewayConfig.
 */
export interface EjournalConfig {
  readonly enabled: boolean;
}

export interface EjournalSection {
  readonly ejournal: EjournalConfig;
}

export interface EjournalInput {
  ejournal?: Partial<EjournalConfig>;
}

export const EJOURNAL_READERS: FieldReaders<EjournalInput> = {
  ejournal: (value, path) => readObject<EjournalConfig>(value, path, { enabled: readBoolean }),
};

export function completeEjournal(input: EjournalInput): EjournalSection {
  return { ejournal: { enabled: false, ...input.ejournal } };
}
