import { Type } from '@sinclair/typebox';

/** Config fields every auth plugin shares, declared once. */

export const anonymousField = () =>
  Type.Optional(
    Type.String({
      minLength: 1,
      description:
        'An optional string (consumer UUID or username) value to use as an "anonymous" consumer if authentication fails. If empty (default null), the request will fail with an authentication failure `4xx`. When set, the plugin does nothing if an earlier plugin already authenticated the request (a logical OR between auth plugins). A consumer that does not exist gives `500 anonymous consumer <value> is configured but doesn\'t exist`.',
    }),
  );

export const hideCredentialsField = (what: string) =>
  Type.Boolean({
    default: false,
    description: `An optional boolean value telling the plugin to show or hide the credential from the upstream service. If \`true\`, the plugin strips the credential from the request (${what}) before proxying it.`,
  });

export const runOnPreflightField = () =>
  Type.Boolean({
    default: true,
    description:
      'A boolean value that indicates whether the plugin should run (and try to authenticate) on `OPTIONS` preflight requests. If set to `false`, then `OPTIONS` requests are always allowed.',
  });

/** A realm goes into a quoted WWW-Authenticate parameter: no quotes, backslashes or control characters. */
export const realmPattern = '^[^"\\\\\\u0000-\\u001f\\u007f]*$';
export const realmMessage = 'must not contain double quotes, backslashes or control characters';
