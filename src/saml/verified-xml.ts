import type { KeyLike } from 'node:crypto';
import type { Element, Node } from '@xmldom/xmldom';
import { SignedXml } from 'xml-crypto';

const DSIG = 'http://www.w3.org/2000/09/xmldsig#';

const isElement = (n: Node): n is Element => n.nodeType === 1;

/** Child elements by local name, and namespace when given (node-saml selects by local name alone). */
export function childElements(parent: Element, localName: string, namespace?: string): Element[] {
  const found: Element[] = [];
  for (let n = parent.firstChild; n; n = n.nextSibling) {
    if (isElement(n) && n.localName === localName && (namespace === undefined || n.namespaceURI === namespace)) found.push(n);
  }
  return found;
}

/** Every element at or below `root`, in document order (iterative: no recursion depth for an attacker to exhaust). */
function* elementsBelow(root: Element): Generator<Element> {
  const stack: Element[] = [root];
  while (stack.length) {
    const el = stack.pop()!;
    yield el;
    const kids: Element[] = [];
    for (let n = el.firstChild; n; n = n.nextSibling) if (isElement(n)) kids.push(n);
    for (let i = kids.length - 1; i >= 0; i--) stack.push(kids[i]!);
  }
}

/**
 * Elements of the whole document carrying `value` in an attribute named id in any letter case
 * (xml-crypto looks under Id, ID and id; node-saml's XPath `@ID` matches case-insensitively), in
 * any namespace, xmlns ones included.
 */
function elementsWithId(anyNode: Element, value: string): Element[] {
  const root = anyNode.ownerDocument?.documentElement;
  if (!root) return [];
  const found: Element[] = [];
  for (const el of elementsBelow(root)) {
    const attrs = el.attributes;
    for (let i = 0; i < attrs.length; i++) {
      const a = attrs.item(i)!;
      if (a.value === value && (a.localName ?? a.name).toLowerCase() === 'id') {
        found.push(el);
        break;
      }
    }
  }
  return found;
}

/**
 * node-saml's `getVerifiedXml` (xml.ts, 5.1), step for step and message for message, on the
 * document the ACS has already parsed: the one ds:Signature that is a child of `node`, at most
 * two Transforms, one Reference, whose URI names `node` and no other element, then xml-crypto's
 * check of that signature with each trusted key in turn. Returns the signed bytes xml-crypto
 * verified (the only XML the caller may read the assertion from), or null.
 *
 * What differs is cost, not outcome: DOM walks instead of node-saml's XPath queries, and
 * xml-crypto looks the reference up under `ID` alone instead of scanning the document once
 * each for Id, ID and id. That narrowing is safe because the uniqueness check here is wider
 * than both libraries' together: no other element may carry the value in an attribute named id
 * in any letter case and namespace. It is also stricter in one way: the signed element must
 * carry the value as its own unprefixed `ID`, the only id attribute the SAML schema gives
 * Response and Assertion (node-saml also accepts `Id`).
 */
export function verifiedXml(fullXml: string, node: Element, keys: readonly KeyLike[]): string | null {
  fullXml = fullXml.replace(/\r\n?/g, '\n');
  const signatures = childElements(node, 'Signature', DSIG);
  if (signatures.length < 1) return null;
  if (signatures.length > 1) throw new Error('Too many signatures found for this element');
  const signature = signatures[0]!;
  let transforms = 0;
  for (const el of elementsBelow(signature)) if (el.localName === 'Transform' && el.namespaceURI === DSIG) transforms++;
  if (transforms > 2) throw new Error('Invalid signature, too many transforms');

  for (const key of keys) {
    const sig = new SignedXml();
    sig.publicCert = key;
    sig.loadSignature(signature as unknown as globalThis.Node);
    const refs = sig.getReferences();
    if (refs.length !== 1) return null;
    if (!signature.parentNode) return null;
    const refUri = refs[0]!.uri ?? '';
    const refId = refUri[0] === '#' ? refUri.substring(1) : refUri;
    if (!refId) throw new Error('signature reference uri not found');
    if (refId.includes("'") || refId.includes('"')) {
      throw new Error('ref URI included quote character \' or ". Not a valid ID, and not allowed');
    }
    const referenced = elementsWithId(node, refId);
    if (referenced.length !== 1 || referenced[0]!.getAttribute('ID') !== refId) {
      throw new Error('Invalid signature: ID cannot refer to more than one element');
    }
    if (referenced[0] !== signature.parentNode) {
      throw new Error("Invalid signature: Referenced node does not refer to it's parent element");
    }
    sig.idAttributes = ['ID'];
    // as in node-saml: a key that does not verify (or a check that throws) moves on to the next key
    try {
      if (!sig.checkSignature(fullXml)) continue;
      const signed = sig.getSignedReferences();
      if (signed.length !== 1) throw new Error('Only 1 signed references should be present in signature');
      return signed[0]!;
    } catch {
      // next key
    }
  }
  return null;
}
