package firefox

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// QuietPrefs keep a test Firefox off the network except for the servers a
// test points it at, and free of first-run UI. Every name was checked
// against Firefox 153 ESR's own defaults and sources. Marionette's own
// "recommended preferences" are turned off (remote.prefs.recommended)
// because they point identity.fxaccounts.auth.uri at a dummy server; the
// ones that matter are repeated here.
func QuietPrefs() map[string]any {
	return map[string]any{
		"remote.prefs.recommended": false,
		// Marionette on a port the OS picks; Firefox writes it to
		// PROFILE/MarionetteActivePort, so there is no port race.
		"marionette.port": 0,

		// Updates, studies, add-on and system add-on updates.
		"app.update.disabledForTesting":         true,
		"app.update.auto":                       false,
		"app.normandy.enabled":                  false,
		"app.normandy.api_url":                  "",
		"app.shield.optoutstudies.enabled":      false,
		"extensions.update.enabled":             false,
		"extensions.systemAddon.update.enabled": false,
		"extensions.getAddons.cache.enabled":    false,
		"extensions.blocklist.enabled":          false,
		"media.gmp-manager.updateEnabled":       false,
		"media.gmp-manager.url":                 "",
		"browser.search.update":                 false,
		"browser.region.network.url":            "",
		"browser.region.update.enabled":         false,

		// Telemetry and data reporting.
		"toolkit.telemetry.enabled":                                   false,
		"toolkit.telemetry.unified":                                   false,
		"toolkit.telemetry.archive.enabled":                           false,
		"toolkit.telemetry.server":                                    "",
		"toolkit.telemetry.reportingpolicy.firstRun":                  false,
		"datareporting.healthreport.uploadEnabled":                    false,
		"datareporting.healthreport.service.enabled":                  false,
		"datareporting.policy.dataSubmissionEnabled":                  false,
		"datareporting.policy.dataSubmissionPolicyBypassNotification": true,
		"datareporting.policy.firstRunURL":                            "",
		"datareporting.usage.uploadEnabled":                           false,
		"identity.fxaccounts.telemetry.clientAssociationPing.enabled": false,

		// Safe Browsing, remote settings, certificate revocation fetches.
		"browser.safebrowsing.malware.enabled":            false,
		"browser.safebrowsing.phishing.enabled":           false,
		"browser.safebrowsing.blockedURIs.enabled":        false,
		"browser.safebrowsing.downloads.enabled":          false,
		"browser.safebrowsing.downloads.remote.enabled":   false,
		"browser.safebrowsing.update.enabled":             false,
		"browser.safebrowsing.provider.google4.updateURL": "",
		"browser.safebrowsing.provider.google5.updateURL": "",
		"browser.safebrowsing.provider.google.updateURL":  "",
		"browser.safebrowsing.provider.mozilla.updateURL": "",
		"services.settings.server":                        "data:,#remote-settings-dummy/v1",
		"security.remote_settings.crlite_filters.enabled": false,
		"security.remote_settings.intermediates.enabled":  false,
		"security.OCSP.enabled":                           0,
		"security.certerrors.mitm.priming.enabled":        false,

		// Anything not on loopback goes to a proxy that is not there, so a
		// connection this list forgot fails at once instead of leaving
		// the machine (Firefox never proxies localhost or 127.0.0.1).
		"network.proxy.type":                 1,
		"network.proxy.http":                 "127.0.0.1",
		"network.proxy.http_port":            9,
		"network.proxy.share_proxy_settings": true,
		"network.proxy.ssl":                  "127.0.0.1",
		"network.proxy.ssl_port":             9,

		// Push, captive portal and connectivity probes, DNS over HTTPS,
		// speculative connections, geolocation.
		"dom.push.connection.enabled":             false,
		"network.captive-portal-service.enabled":  false,
		"network.connectivity-service.enabled":    false,
		"network.trr.mode":                        5,
		"network.dns.disablePrefetch":             true,
		"network.prefetch-next":                   false,
		"network.http.speculative-parallel-limit": 0,
		"geo.provider.network.url":                "",

		// New tab, start page, suggestions, ML, translations, promos.
		"browser.startup.page":                                        0,
		"browser.startup.homepage":                                    "about:blank",
		"browser.startup.homepage_override.mstone":                    "ignore",
		"startup.homepage_welcome_url":                                "about:blank",
		"browser.aboutwelcome.enabled":                                false,
		"browser.newtabpage.enabled":                                  false,
		"browser.newtab.preload":                                      false,
		"browser.newtabpage.activity-stream.feeds.system.topstories":  false,
		"browser.newtabpage.activity-stream.feeds.section.topstories": false,
		"browser.newtabpage.activity-stream.showSponsoredTopSites":    false,
		"browser.newtabpage.activity-stream.telemetry":                false,
		"browser.topsites.contile.enabled":                            false,
		"browser.urlbar.quicksuggest.enabled":                         false,
		"browser.urlbar.suggest.searches":                             false,
		"browser.urlbar.merino.endpointURL":                           "",
		"browser.discovery.enabled":                                   false,
		"browser.vpn_promo.enabled":                                   false,
		"browser.uitour.enabled":                                      false,
		"browser.ml.enable":                                           false,
		"browser.ml.chat.enabled":                                     false,
		"browser.translations.enable":                                 false,
		"termsofuse.bypassNotification":                               true,
		"browser.shell.checkDefaultBrowser":                           false,
		"browser.aboutConfig.showWarning":                             false,
		"browser.contentblocking.introCount":                          99,
		"browser.pagethumbnails.capturing_disabled":                   true,
		"browser.tabs.warnOnClose":                                    false,
		"browser.warnOnQuit":                                          false,
		"browser.sessionstore.resume_from_crash":                      false,
		"toolkit.startup.max_resumed_crashes":                         -1,
		// No "which profile" or sync-merge dialogs between profiles.
		"browser.profiles.enabled": false,

		// Saved logins are wanted (Sync carries them), but no prompts
		// or remote breach lookups.
		"signon.rememberSignons":                       true,
		"signon.generation.enabled":                    false,
		"signon.firefoxRelay.feature":                  "disabled",
		"signon.management.page.breach-alerts.enabled": false,

		// Automation: clicks right after a load count, focus works
		// headless.
		"dom.input_events.security.minNumTicks":        0,
		"dom.input_events.security.minTimeElapsedInMS": 0,
		"focusmanager.testmode":                        true,
		"browser.dom.window.dump.enabled":              true,
	}
}

// AccountPrefs point Firefox's accounts, OAuth, profile and token server
// at a weave serving --accounts, through one autoconfig URL (what a user
// sets in about:config), plus what plain HTTP needs.
func AccountPrefs(weaveURL string) map[string]any {
	p := map[string]any{"identity.fxaccounts.autoconfig.uri": weaveURL}
	if strings.HasPrefix(weaveURL, "http://") {
		// FxAccountsConfig refuses non-HTTPS account servers without it.
		p["identity.fxaccounts.allowHttp"] = true
	}
	return p
}

// DebugPrefs make Firefox's accounts and Sync code log to standard output
// (kept in Firefox.Log), which is how failures in the sign-in flow become
// visible.
func DebugPrefs() map[string]any {
	return map[string]any{
		"identity.fxaccounts.loglevel":    "Debug",
		"services.sync.log.appender.dump": "Debug",
		"services.sync.log.logger":        "Debug",
	}
}

// UserJS renders prefs as a user.js file, sorted for stable output.
func UserJS(prefs map[string]any) ([]byte, error) {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(prefs)) {
		var v string
		switch x := prefs[k].(type) {
		case bool:
			v = strconv.FormatBool(x)
		case int:
			v = strconv.Itoa(x)
		case string:
			if strings.ContainsFunc(x, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
				return nil, fmt.Errorf("pref %s: control character in value", k)
			}
			// Firefox's pref parser knows \\ and \" escapes.
			v = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(x) + `"`
		default:
			return nil, fmt.Errorf("pref %s: unsupported type %T", k, x)
		}
		if strings.ContainsAny(k, "\"\\") || strings.ContainsFunc(k, func(r rune) bool { return r < 0x20 }) {
			return nil, fmt.Errorf("bad pref name %q", k)
		}
		fmt.Fprintf(&b, "user_pref(\"%s\", %s);\n", k, v)
	}
	return []byte(b.String()), nil
}
