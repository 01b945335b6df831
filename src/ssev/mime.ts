/**
 * SSEV does not always say what a received file is (REST blobs carry only a name; SOAP ContentType may be
 * null): the media type is taken from the extension of the usual document formats, else octet-stream.
 */
const BY_EXTENSION: Readonly<Record<string, string>> = {
  pdf: 'application/pdf', p7s: 'application/pkcs7-signature', p7m: 'application/pkcs7-mime', xml: 'application/xml',
  json: 'application/json', txt: 'text/plain', csv: 'text/csv', html: 'text/html', htm: 'text/html',
  doc: 'application/msword', docx: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  xls: 'application/vnd.ms-excel', xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  odt: 'application/vnd.oasis.opendocument.text', ods: 'application/vnd.oasis.opendocument.spreadsheet',
  rtf: 'application/rtf', zip: 'application/zip', '7z': 'application/x-7z-compressed', rar: 'application/vnd.rar',
  jpg: 'image/jpeg', jpeg: 'image/jpeg', png: 'image/png', gif: 'image/gif', tif: 'image/tiff', tiff: 'image/tiff',
  bmp: 'image/bmp', asice: 'application/vnd.etsi.asic-e+zip', asics: 'application/vnd.etsi.asic-s+zip',
};

export function mimeTypeFor(fileName: string, declared?: string | null): string {
  if (declared && /^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$/i.test(declared.trim())) return declared.trim().toLowerCase();
  const dot = fileName.lastIndexOf('.');
  const ext = dot === -1 ? '' : fileName.slice(dot + 1).toLowerCase();
  return BY_EXTENSION[ext] ?? 'application/octet-stream';
}

/**
 * A received file name made safe to hand on: no path, no control characters, bounded; never empty. The bytes
 * are stored by hash, so the name is only a label, but records systems write it to disk.
 */
export function safeFileName(name: string | undefined, fallback: string): string {
  const base = (name ?? '').split(/[\\/]/).pop() ?? '';
  const clean = base.replace(/[\x00-\x1f\x7f]/g, '').trim().replace(/^\.+/, '').slice(0, 200);
  return clean === '' ? fallback : clean;
}
