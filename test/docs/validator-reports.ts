/**
 * The rules the validator reports, read from its source with the TypeScript parser, for
 * test/docs/catalogue.test.ts: every `new LintError('F13', message, ...)` (a hard rule) and every
 * `{ rule: 'F12', message }` handed to the warning handler (a soft rule), with its message and line.
 */
import { readFileSync } from 'node:fs';
import ts from 'typescript';

/** One place where the validator reports a rule. */
export interface RuleReport {
  /** The rule's id, "F13". */
  rule: string;
  /** hard: a LintError is thrown; soft: a warning goes to the handler. */
  kind: 'hard' | 'soft';
  /**
   * The message's literal parts: one part for a plain string, several for a template literal, whose `${...}`
   * placeholders lie between them. Undefined when the message is not a literal.
   */
  messageParts: string[] | undefined;
  file: string;
  /** 1-based line of the report. */
  line: number;
}

/** Every report in `file` whose rule id is a string literal; reports whose id is computed are skipped. */
export function readRuleReports(file: string): RuleReport[] {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const reports: RuleReport[] = [];
  const add = (rule: ts.Expression | undefined, message: ts.Expression | undefined, kind: RuleReport['kind'], at: ts.Node): void => {
    if (rule === undefined || !ts.isStringLiteral(rule)) return;
    const line = source.getLineAndCharacterOfPosition(at.getStart(source)).line + 1;
    reports.push({ rule: rule.text, kind, messageParts: message === undefined ? undefined : literalParts(message), file, line });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isNewExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === 'LintError') {
      add(node.arguments?.[0], node.arguments?.[1], 'hard', node);
    } else if (ts.isObjectLiteralExpression(node)) {
      add(propertyValue(node, 'rule'), propertyValue(node, 'message'), 'soft', node);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return reports;
}

/** The initializer of property `name` in an object literal, when it is a plain `name: value` property. */
function propertyValue(object: ts.ObjectLiteralExpression, name: string): ts.Expression | undefined {
  for (const property of object.properties) {
    if (ts.isPropertyAssignment(property) && ts.isIdentifier(property.name) && property.name.text === name) return property.initializer;
  }
  return undefined;
}

/** The literal text of a string or template literal, split at its placeholders; undefined for anything else. */
function literalParts(node: ts.Expression): string[] | undefined {
  if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) return [node.text];
  if (ts.isTemplateExpression(node)) return [node.head.text, ...node.templateSpans.map((span) => span.literal.text)];
  return undefined;
}

/** A pattern that finds a message in prose: the literal parts in order, each placeholder standing for some text. */
export function messagePattern(parts: string[]): RegExp {
  const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(parts.map(escape).join('[^`\\n]+?'));
}
