export { parseXml, DEFAULT_XML_LIMITS, type XmlLimits } from './parse.ts';
export {
  XML_NS, textValue, elementText, childElements, descendantsAndSelf, namespacesInScope,
  type XmlAttribute, type XmlDocument, type XmlElement, type XmlNode, type XmlText, type XmlProcessingInstruction,
  type NamespaceDeclaration,
} from './tree.ts';
