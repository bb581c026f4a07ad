// Swagger UI for /openapi.json, from a file (no inline script: the /docs policy is script-src 'self').
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  // No call to validator.swagger.io: the documents are validated by the test suite.
  validatorUrl: null,
  // The session cookie set by POST /auth/login goes with "Try it out" requests (same origin).
  withCredentials: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
});
