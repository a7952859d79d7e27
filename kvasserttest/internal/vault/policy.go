package vault

import (
	"crypto/x509"
	"encoding/asn1"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
)

// certPolicy is a certificate policy, as sent and as answered.
type certPolicy struct {
	ID              string            `json:"id,omitempty"`
	KeyProps        *keyProps         `json:"key_props,omitempty"`
	SecretProps     *secretProps      `json:"secret_props,omitempty"`
	X509Props       *x509Props        `json:"x509_props,omitempty"`
	LifetimeActions []lifetimeAction  `json:"lifetime_actions,omitempty"`
	Issuer          *issuerParams     `json:"issuer,omitempty"`
	Attributes      *policyAttributes `json:"attributes,omitempty"`
}

type keyProps struct {
	Exportable *bool  `json:"exportable,omitempty"`
	Kty        string `json:"kty,omitempty"`
	KeySize    *int   `json:"key_size,omitempty"`
	ReuseKey   *bool  `json:"reuse_key,omitempty"`
	Curve      string `json:"crv,omitempty"`
}

type secretProps struct {
	ContentType string `json:"contentType,omitempty"`
}

type x509Props struct {
	Subject          string            `json:"subject,omitempty"`
	Ekus             []string          `json:"ekus"`
	Sans             *sans             `json:"sans,omitempty"`
	KeyUsage         []string          `json:"key_usage"`
	ValidityMonths   *int              `json:"validity_months,omitempty"`
	BasicConstraints *basicConstraints `json:"basic_constraints,omitempty"`
}

type sans struct {
	DNSNames []string `json:"dns_names,omitempty"`
	Emails   []string `json:"emails,omitempty"`
	UPNs     []string `json:"upns,omitempty"`
}

type basicConstraints struct {
	CA bool `json:"ca"`
}

type lifetimeAction struct {
	Trigger *lifetimeTrigger `json:"trigger,omitempty"`
	Action  *lifetimeType    `json:"action,omitempty"`
}

type lifetimeTrigger struct {
	LifetimePercentage *int `json:"lifetime_percentage,omitempty"`
	DaysBeforeExpiry   *int `json:"days_before_expiry,omitempty"`
}

type lifetimeType struct {
	ActionType string `json:"action_type,omitempty"`
}

type issuerParams struct {
	Name            string `json:"name,omitempty"`
	CertificateType string `json:"cty,omitempty"`
}

type policyAttributes struct {
	Enabled bool  `json:"enabled"`
	Created int64 `json:"created"`
	Updated int64 `json:"updated"`
}

// Content types of a certificate's secret.
const (
	contentPKCS12 = "application/x-pkcs12"
	contentPEM    = "application/x-pem-file"
)

type keyUsageBit struct {
	name string
	bit  x509.KeyUsage
}

var keyUsageBits = []keyUsageBit{
	{"digitalSignature", x509.KeyUsageDigitalSignature},
	{"nonRepudiation", x509.KeyUsageContentCommitment},
	{"keyEncipherment", x509.KeyUsageKeyEncipherment},
	{"dataEncipherment", x509.KeyUsageDataEncipherment},
	{"keyAgreement", x509.KeyUsageKeyAgreement},
	{"keyCertSign", x509.KeyUsageCertSign},
	{"cRLSign", x509.KeyUsageCRLSign},
	{"encipherOnly", x509.KeyUsageEncipherOnly},
	{"decipherOnly", x509.KeyUsageDecipherOnly},
}

func ptr[T any](v T) *T { return &v }

// clonePolicy deep-copies a policy.
func clonePolicy(p *certPolicy) *certPolicy {
	if p == nil {
		return nil
	}
	data, _ := json.Marshal(p)
	var out certPolicy
	json.Unmarshal(data, &out) //nolint:errcheck // round trip of our own type
	return &out
}

// normalizePolicy fills the service's defaults into a policy and validates
// it, section by section, in the order the service reports problems.
func normalizePolicy(p *certPolicy) *apiError {
	if p.KeyProps == nil {
		p.KeyProps = &keyProps{}
	}
	if e := normalizeKeyProps(p.KeyProps); e != nil {
		return e
	}
	if p.SecretProps == nil {
		p.SecretProps = &secretProps{}
	}
	if e := normalizeSecretProps(p.SecretProps); e != nil {
		return e
	}
	if p.X509Props == nil {
		p.X509Props = &x509Props{}
	}
	if e := normalizeX509Props(p.X509Props); e != nil {
		return e
	}
	if p.Issuer == nil {
		p.Issuer = &issuerParams{}
	}
	if e := normalizeIssuer(p.Issuer); e != nil {
		return e
	}
	return normalizeLifetimeActions(p, *p.X509Props.ValidityMonths)
}

// normalizeKeyProps fills and checks key_props: type, size or curve,
// exportable (never for an HSM key), reuse_key.
func normalizeKeyProps(kp *keyProps) *apiError {
	if kp.Kty == "" {
		kp.Kty = "RSA"
		if kp.Curve != "" {
			kp.Kty = "EC"
		}
	}
	var e *apiError
	switch kp.Kty {
	case "RSA", "RSA-HSM":
		e = normalizeRSAKeyProps(kp)
	case "EC", "EC-HSM":
		e = normalizeECKeyProps(kp)
	default:
		e = badParameter("Invalid key type for a certificate: '%s'.", kp.Kty)
	}
	if e != nil {
		return e
	}
	hsmKey := strings.HasSuffix(kp.Kty, "-HSM")
	if kp.Exportable == nil {
		kp.Exportable = ptr(!hsmKey)
	}
	if *kp.Exportable && hsmKey {
		return badParameter("HSM-protected keys (%s) cannot be exportable.", kp.Kty)
	}
	if kp.ReuseKey == nil {
		kp.ReuseKey = ptr(false)
	}
	return nil
}

func normalizeRSAKeyProps(kp *keyProps) *apiError {
	if kp.KeySize == nil {
		kp.KeySize = ptr(2048)
	}
	if s := *kp.KeySize; s != 2048 && s != 3072 && s != 4096 {
		return badParameter("The RSA key size %d is not supported; use 2048, 3072 or 4096.", s)
	}
	if kp.Curve != "" {
		return badParameter("The parameter 'crv' is not valid for a key of type %s.", kp.Kty)
	}
	return nil
}

func normalizeECKeyProps(kp *keyProps) *apiError {
	if kp.Curve == "" {
		kp.Curve = "P-256"
		if kp.KeySize != nil {
			switch *kp.KeySize {
			case 384:
				kp.Curve = "P-384"
			case 521:
				kp.Curve = "P-521"
			}
		}
	}
	c, ok := curveByName(kp.Curve)
	if !ok {
		if kp.Curve == "P-256K" {
			return badParameter("Curve P-256K (secp256k1) is not supported by the kvassert emulator.")
		}
		return badParameter("Invalid curve: '%s'.", kp.Curve)
	}
	if kp.KeySize == nil {
		kp.KeySize = ptr(c.Params().BitSize)
	} else if *kp.KeySize != c.Params().BitSize {
		return badParameter("The key size %d does not match curve %s.", *kp.KeySize, kp.Curve)
	}
	return nil
}

func normalizeSecretProps(sp *secretProps) *apiError {
	switch sp.ContentType {
	case "":
		sp.ContentType = contentPKCS12
	case contentPKCS12, contentPEM:
	default:
		return badParameter("Invalid content type: '%s'; use %s or %s.", sp.ContentType, contentPKCS12, contentPEM)
	}
	return nil
}

// normalizeX509Props fills and checks x509_props: subject or SANs, EKUs,
// key usage, validity, basic constraints.
func normalizeX509Props(xp *x509Props) *apiError {
	if xp.Subject == "" && (xp.Sans == nil || len(xp.Sans.DNSNames)+len(xp.Sans.Emails)+len(xp.Sans.UPNs) == 0) {
		return badParameter("Either the subject or the subject alternative names of the certificate policy must be given.")
	}
	if xp.Subject != "" {
		if _, e := parseDN(xp.Subject); e != nil {
			return e
		}
	}
	if xp.Ekus == nil {
		xp.Ekus = []string{"1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"}
	}
	for _, eku := range xp.Ekus {
		if _, ok := parseOID(eku); !ok {
			return badParameter("Invalid enhanced key usage: '%s'.", eku)
		}
	}
	if xp.KeyUsage == nil {
		xp.KeyUsage = []string{"digitalSignature", "keyEncipherment"}
	}
	for _, ku := range xp.KeyUsage {
		if !slices.ContainsFunc(keyUsageBits, func(b keyUsageBit) bool { return b.name == ku }) {
			return badParameter("Invalid key usage: '%s'.", ku)
		}
	}
	if xp.ValidityMonths == nil {
		xp.ValidityMonths = ptr(12)
	}
	if m := *xp.ValidityMonths; m < 1 || m > 1200 {
		return badParameter("The validity of %d months is out of range 1-1200.", m)
	}
	if xp.BasicConstraints == nil {
		xp.BasicConstraints = &basicConstraints{}
	}
	return nil
}

func normalizeIssuer(ip *issuerParams) *apiError {
	switch strings.ToLower(ip.Name) {
	case "self", "unknown":
	case "":
		ip.Name = "Unknown"
	default:
		return badParameter("Issuer '%s' is not supported by the kvassert emulator (use Self or Unknown).", ip.Name)
	}
	return nil
}

// normalizeLifetimeActions fills the service's default action (AutoRenew at
// 80 %, EmailContacts for an Unknown issuer) and checks each action.
func normalizeLifetimeActions(p *certPolicy, validityMonths int) *apiError {
	if p.LifetimeActions == nil {
		action := "AutoRenew"
		if strings.EqualFold(p.Issuer.Name, "Unknown") {
			action = "EmailContacts"
		}
		p.LifetimeActions = []lifetimeAction{{Trigger: &lifetimeTrigger{LifetimePercentage: ptr(80)}, Action: &lifetimeType{ActionType: action}}}
	}
	for _, a := range p.LifetimeActions {
		if a.Action == nil || (a.Action.ActionType != "AutoRenew" && a.Action.ActionType != "EmailContacts") {
			return badParameter("Invalid lifetime action: the action type must be AutoRenew or EmailContacts.")
		}
		if a.Trigger == nil || (a.Trigger.LifetimePercentage == nil) == (a.Trigger.DaysBeforeExpiry == nil) {
			return badParameter("Invalid lifetime action: give exactly one of lifetime_percentage and days_before_expiry.")
		}
		if lp := a.Trigger.LifetimePercentage; lp != nil && (*lp < 1 || *lp > 99) {
			return badParameter("Invalid lifetime action: lifetime_percentage must be between 1 and 99.")
		}
		if d := a.Trigger.DaysBeforeExpiry; d != nil && (*d < 1 || *d > validityMonths*27) {
			return badParameter("Invalid lifetime action: days_before_expiry must be between 1 and validity_months * 27 (%d).", validityMonths*27)
		}
	}
	return nil
}

// mergePolicy applies the fields given in a policy update onto p.
func mergePolicy(p, upd *certPolicy) {
	if k := upd.KeyProps; k != nil {
		if p.KeyProps == nil {
			p.KeyProps = &keyProps{}
		}
		if k.Exportable != nil {
			p.KeyProps.Exportable = k.Exportable
		}
		if k.Kty != "" {
			if k.Kty != p.KeyProps.Kty {
				p.KeyProps.KeySize, p.KeyProps.Curve = nil, ""
			}
			p.KeyProps.Kty = k.Kty
		}
		if k.KeySize != nil {
			p.KeyProps.KeySize = k.KeySize
		}
		if k.Curve != "" {
			p.KeyProps.Curve = k.Curve
		}
		if k.ReuseKey != nil {
			p.KeyProps.ReuseKey = k.ReuseKey
		}
	}
	if s := upd.SecretProps; s != nil && s.ContentType != "" {
		p.SecretProps = &secretProps{ContentType: s.ContentType}
	}
	if x := upd.X509Props; x != nil {
		if p.X509Props == nil {
			p.X509Props = &x509Props{}
		}
		if x.Subject != "" {
			p.X509Props.Subject = x.Subject
		}
		if x.Ekus != nil {
			p.X509Props.Ekus = x.Ekus
		}
		if x.KeyUsage != nil {
			p.X509Props.KeyUsage = x.KeyUsage
		}
		if x.Sans != nil {
			p.X509Props.Sans = x.Sans
		}
		if x.ValidityMonths != nil {
			p.X509Props.ValidityMonths = x.ValidityMonths
		}
		if x.BasicConstraints != nil {
			p.X509Props.BasicConstraints = x.BasicConstraints
		}
	}
	if upd.LifetimeActions != nil {
		p.LifetimeActions = upd.LifetimeActions
	}
	if upd.Issuer != nil && upd.Issuer.Name != "" {
		p.Issuer = upd.Issuer
	}
}

func parseOID(s string) (asn1.ObjectIdentifier, bool) {
	parts := strings.Split(s, ".")
	if len(parts) < 2 {
		return nil, false
	}
	oid := make(asn1.ObjectIdentifier, len(parts))
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return nil, false
		}
		oid[i] = n
	}
	if oid[0] > 2 || (oid[0] < 2 && oid[1] >= 40) {
		return nil, false
	}
	return oid, true
}

// keyUsage converts the policy's key usage names.
func keyUsage(names []string) x509.KeyUsage {
	var ku x509.KeyUsage
	for _, n := range names {
		for _, b := range keyUsageBits {
			if b.name == n {
				ku |= b.bit
			}
		}
	}
	return ku
}

// keyUsageNames lists the names of a certificate's key usage bits.
func keyUsageNames(ku x509.KeyUsage) []string {
	names := []string{}
	for _, b := range keyUsageBits {
		if ku&b.bit != 0 {
			names = append(names, b.name)
		}
	}
	return names
}

// keyOpsFor maps key usage to the operations of the certificate's key, as
// the service documents it.
func keyOpsFor(names []string) []string {
	var ops []string
	add := func(o ...string) {
		for _, op := range o {
			if !slices.Contains(ops, op) {
				ops = append(ops, op)
			}
		}
	}
	for _, n := range names {
		switch n {
		case "digitalSignature", "nonRepudiation", "keyCertSign", "cRLSign":
			add("sign", "verify")
		case "keyEncipherment":
			add("wrapKey", "unwrapKey")
		case "dataEncipherment":
			add("encrypt", "decrypt")
		case "decipherOnly":
			add("decrypt")
		case "encipherOnly":
			add("encrypt")
		}
	}
	if ops == nil {
		ops = []string{"sign", "verify"}
	}
	return ops
}
