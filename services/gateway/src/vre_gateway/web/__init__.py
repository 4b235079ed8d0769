"""The browser interface: landing page, guides, sign-in (OIDC code + PKCE) and the dashboard."""
