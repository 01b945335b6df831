import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseXml, childElements } from '../src/xml/index.ts';
import { canonicalizeDocument, canonicalSubtreeString } from '../src/xmldsig/index.ts';
import { requireTool, runTool } from './support/tools.ts';

/** Our inclusive C14N 1.0 against libxml2's (`xmllint --c14n`), an independent implementation. */
function ours(xml: string): string {
  const parts: string[] = [];
  canonicalizeDocument(parseXml(xml), (c) => parts.push(typeof c === 'string' ? c : c.toString('utf8')));
  return parts.join('');
}

function libxml2(xml: string): string {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'c14n-')), 'in.xml');
  fs.writeFileSync(file, xml);
  const r = runTool('xmllint', ['--c14n', '--nonet', file]);
  expect(r.status, r.stderr).toBe(0);
  return r.stdout;
}

const CASES: Record<string, string> = {
  'attribute and namespace ordering': '<r xmlns:b="urn:b" xmlns:a="urn:a" xmlns="urn:d" z="1" b:y="2" a:x="3" a="4"><c/></r>',
  'superfluous namespace redeclarations dropped': '<r xmlns="urn:d" xmlns:p="urn:p"><p:c xmlns:p="urn:p" xmlns="urn:d"><d xmlns=""/></p:c></r>',
  'default namespace undeclared only where it changes': '<r><a xmlns=""><b xmlns="urn:x"><c xmlns=""/></b></a></r>',
  'entities and character references': '<r a="&lt;&amp;&quot;&#9;&#10;&#13;x">&lt;&gt;&amp;&#13;&#x410;&apos;"</r>',
  'line endings and whitespace': '<r>\r\n  a\r b\n</r>\r\n',
  'attribute whitespace normalization': '<r a="x\ty\nz"/>',
  'CDATA becomes escaped text': '<r><![CDATA[<x> & ]] >]]></r>',
  'PIs inside and outside the root': '<?pi before?><r><?pi2   data ?></r><?pi after?>',
  'xml declaration dropped, Cyrillic kept': '<?xml version="1.0" encoding="UTF-8"?>\n<Съобщение атрибут="стойност">Текст</Съобщение>',
  'empty elements expanded': '<r><a/><b></b><c x="1" /></r>',
  'xml:lang and xml:space attributes': '<r xml:lang="bg" xml:space="preserve"><a xml:lang="en"> x </a></r>',
  '.NET root with xsi/xsd': '<Message xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns="http://schemas.egov.bg/messaging/v1"><Header/></Message>',
};

describe('inclusive C14N 1.0', () => {
  beforeAll(() => requireTool('xmllint'));

  for (const [name, xml] of Object.entries(CASES)) {
    it(`matches libxml2: ${name}`, () => {
      expect(ours(xml)).toBe(libxml2(xml));
    });
  }

  it('drops comments (xmllint --c14n keeps them, so compare with the comment-free document)', () => {
    const withComments = '<?pi before?><!-- c --><r><!-- inner -->x<?pi2 d?></r><!-- tail -->';
    expect(ours(withComments)).toBe(libxml2('<?pi before?><r>x<?pi2 d?></r>'));
  });

  it('renders inherited namespaces and xml:* attributes on a document-subset apex', () => {
    const doc = parseXml('<r xmlns="urn:r" xmlns:x="urn:x" xml:lang="bg"><s xmlns="urn:dsig"><SignedInfo a="1"><x:y/></SignedInfo></s></r>');
    const signedInfo = childElements(childElements(doc.root)[0])[0];
    expect(canonicalSubtreeString(signedInfo)).toBe(
      '<SignedInfo xmlns="urn:dsig" xmlns:x="urn:x" a="1" xml:lang="bg"><x:y></x:y></SignedInfo>',
    );
  });

  it('excludes one element and its subtree (the enveloped-signature transform)', () => {
    const doc = parseXml('<r><a>1</a><Signature xmlns="urn:dsig"><b/></Signature></r>');
    const sig = childElements(doc.root)[1];
    const parts: string[] = [];
    canonicalizeDocument(doc, (c) => parts.push(String(c)), sig);
    expect(parts.join('')).toBe('<r><a>1</a></r>');
  });
});
