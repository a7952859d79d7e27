package proxy

import (
	"crypto"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/certfile"
	"github.com/kvassert/kvassert/internal/textutil"
)

// maxFileSize bounds certificate and key files (as certfile.Load does).
const maxFileSize = 1 << 20

var fileNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// namedFile is a certificate configured at start.
type namedFile struct {
	name  string
	files certFiles // absolute paths
	src   *kvassert.LocalSource
}

// fileStore decides which certificate files a request may use: those
// configured at start (by name or by their exact path) and regular files
// under the file root, opened through os.Root so that neither ".." nor a
// symbolic link can leave it. Nothing else is ever opened.
type fileStore struct {
	named    map[string]*namedFile
	byPath   map[string]*namedFile // absolute certificate path
	root     *os.Root
	rootPath string
}

// certFiles names a certificate file and, when not empty, its PEM private
// key file.
type certFiles struct{ CertFile, KeyFile string }

func newFileStore(files, keyFiles map[string]string, root string) (*fileStore, error) {
	fs := &fileStore{named: map[string]*namedFile{}, byPath: map[string]*namedFile{}}
	for name := range keyFiles {
		if _, ok := files[name]; !ok {
			return nil, optionError("KeyFiles", "Options.KeyFiles[%q]: no certificate of this name in Options.Files", textutil.Truncate(name, 64))
		}
	}
	for name, certFile := range files {
		if !fileNameRE.MatchString(name) {
			return nil, optionError("Files", "Options.Files: certificate name %q: use 1-64 letters, digits, '.', '_' and '-' (it becomes a URL path segment)", textutil.Truncate(name, 64))
		}
		if certFile == "" {
			return nil, optionError("Files", "Options.Files[%q] has no certificate file", name)
		}
		nf, err := loadNamedFile(name, certFiles{CertFile: cleanPath(certFile), KeyFile: cleanPath(keyFiles[name])})
		if err != nil {
			return nil, wrapOptionError("Files", err, "Options.Files[%q]: %v", name, err)
		}
		fs.named[name] = nf
		fs.byPath[nf.files.CertFile] = nf
	}
	if root != "" {
		if err := fs.openRoot(root); err != nil {
			return nil, err
		}
	}
	return fs, nil
}

// loadNamedFile reads a certificate configured at start (abs: absolute
// paths).
func loadNamedFile(name string, abs certFiles) (*namedFile, error) {
	cert, signer, err := certfile.Load(abs.CertFile, abs.KeyFile, nil)
	if err != nil {
		return nil, err
	}
	src, err := kvassert.NewLocalSource(cert, signer, nil)
	if err != nil {
		return nil, err
	}
	return &namedFile{name: name, files: abs, src: src}, nil
}

// openRoot opens Options.FileRoot.
func (fs *fileStore) openRoot(root string) error {
	abs := cleanPath(root)
	st, err := os.Stat(abs)
	if err != nil {
		return wrapOptionError("FileRoot", err, "Options.FileRoot: %v", err)
	}
	if !st.IsDir() {
		return optionError("FileRoot", "Options.FileRoot %s is not a directory", abs)
	}
	if fs.root, err = os.OpenRoot(abs); err != nil {
		return wrapOptionError("FileRoot", err, "Options.FileRoot: %v", err)
	}
	fs.rootPath = abs
	return nil
}

// localFile is what a local-certificate request resolved to.
type localFile struct {
	// key identifies the certificate (and its version on disk) for the
	// credential cache.
	key string
	// named is set for a certificate configured at start.
	named *namedFile
	// certRel, keyRel are paths relative to the file root.
	certRel, keyRel string
}

// resolve maps the certFile and keyFile of a request to a permitted
// certificate, adding field errors otherwise. Paths outside the permitted
// set are refused without looking at the file system, so a request can
// learn nothing about other files.
func (fs *fileStore) resolve(certFile, keyFile string, errs *fieldErrors) *localFile {
	if nf := fs.named[certFile]; nf != nil {
		return fs.namedWithKey(nf, keyFile, errs)
	}
	if nf := fs.byPath[cleanPath(certFile)]; nf != nil && certFile != "" {
		return fs.namedWithKey(nf, keyFile, errs)
	}
	if fs.root == nil {
		errs.add("certFile", "not a certificate configured at start; give the name of one started with --file name=cert.pem[,key.pem], or start the proxy with --file-root DIR to allow files under DIR")
		return nil
	}
	lf := &localFile{}
	var ok bool
	var certInfo, keyInfo string
	lf.certRel, certInfo, ok = fs.underRoot("certFile", certFile, errs)
	if keyFile != "" {
		var kok bool
		lf.keyRel, keyInfo, kok = fs.underRoot("keyFile", keyFile, errs)
		ok = ok && kok
	}
	if !ok {
		return nil
	}
	lf.key = "root:" + lf.certRel + "@" + certInfo + "|" + lf.keyRel + "@" + keyInfo
	return lf
}

func (fs *fileStore) namedWithKey(nf *namedFile, keyFile string, errs *fieldErrors) *localFile {
	if keyFile != "" && cleanPath(keyFile) != nf.files.KeyFile {
		errs.add("keyFile", fmt.Sprintf("the certificate %q was configured at start with its key; leave keyFile empty", nf.name))
		return nil
	}
	return &localFile{key: "named:" + nf.name, named: nf}
}

// underRoot checks that p names a regular file under the file root and
// returns its path relative to the root and a version stamp (size and
// modification time), so an edited file gets a fresh credential.
func (fs *fileStore) underRoot(field, p string, errs *fieldErrors) (rel, stamp string, ok bool) {
	rel = p
	if filepath.IsAbs(p) {
		r, err := filepath.Rel(fs.rootPath, filepath.Clean(p))
		if err != nil {
			errs.add(field, "not under the file root the proxy was started with")
			return "", "", false
		}
		rel = r
	}
	rel = filepath.Clean(rel)
	if !filepath.IsLocal(rel) {
		errs.add(field, "not under the file root the proxy was started with")
		return "", "", false
	}
	st, err := fs.root.Stat(rel)
	switch {
	case errors.Is(err, os.ErrNotExist):
		errs.add(field, "no such file under the file root")
		return "", "", false
	case err != nil:
		// os.Root refuses links that leave the root: report it as such.
		errs.add(field, "not a file under the file root (links may not leave it)")
		return "", "", false
	case !st.Mode().IsRegular():
		errs.add(field, "not a regular file")
		return "", "", false
	case st.Size() > maxFileSize:
		errs.add(field, "larger than "+strconv.Itoa(maxFileSize)+" bytes: not a certificate or key file")
		return "", "", false
	}
	return filepath.ToSlash(rel), strconv.FormatInt(st.Size(), 10) + "." + strconv.FormatInt(st.ModTime().UnixNano(), 10), true
}

// source returns the signing source of a resolved certificate.
func (fs *fileStore) source(lf *localFile) (kvassert.Source, error) {
	if lf.named != nil {
		return lf.named.src, nil
	}
	data, err := fs.read(lf.certRel)
	if err != nil {
		return nil, err
	}
	if lf.keyRel != "" {
		key, err := fs.read(lf.keyRel)
		if err != nil {
			return nil, err
		}
		data = append(append(data, '\n'), key...)
	}
	cert, signer, err := parseCertificate(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", lf.certRel, err)
	}
	return kvassert.NewLocalSource(cert, signer, nil)
}

func (fs *fileStore) read(rel string) ([]byte, error) {
	f, err := fs.root.Open(filepath.FromSlash(rel))
	if err != nil {
		return nil, errors.New("cannot open " + rel + " under the file root")
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, errors.New("cannot read " + rel)
	}
	if len(data) > maxFileSize {
		return nil, errors.New(rel + " is too large")
	}
	return data, nil
}

// parseCertificate reads a PEM or PKCS#12 certificate with its private key
// (kvassert.ParseCertificateData) and words its error for a field-level
// problem: the reason without the package name, and what to do when the
// key is missing.
func parseCertificate(data []byte) (*x509.Certificate, crypto.Signer, error) {
	cert, signer, err := certfile.Parse(data, nil)
	if err != nil {
		msg := err.Error()
		var ie *kvassert.InputError
		if errors.As(err, &ie) {
			msg = ie.Reason
		}
		if errors.Is(err, certfile.ErrNoPrivateKey) {
			msg += " (give keyFile when the key is in a separate file)"
		}
		return nil, nil, errors.New(msg)
	}
	return cert, signer, nil
}

// thumbprints returns the SHA-1 and SHA-256 digests of a certificate's DER.
func thumbprints(der []byte) (sha1Sum, sha256Sum []byte) {
	a := sha1.Sum(der)
	b := sha256.Sum256(der)
	return a[:], b[:]
}
