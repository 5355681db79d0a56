# Completes one http-01 issuance with Debian's ruby-acme-client, the way
# its README shows. Driven by TestRubyAcmeClient (ruby_test.go):
#
#   ruby issue.rb DIRECTORY_URL CA_FILE WEBROOT NAME
#
# The challenge file goes under WEBROOT, which the test serves on the
# server's http-01 port; the certificate chain is printed on stdout.
require 'acme/client'
require 'fileutils'
require 'openssl'

directory, ca_file, webroot, name = ARGV
abort 'usage: issue.rb DIRECTORY_URL CA_FILE WEBROOT NAME' unless name

def wait_for(what)
  deadline = Time.now + 20
  while yield
    raise "#{what} did not finish in 20s" if Time.now > deadline
    sleep 0.25
  end
end

client = Acme::Client.new(private_key: OpenSSL::PKey::EC.generate('prime256v1'), directory: directory,
                          connection_options: { ssl: { ca_file: ca_file } })
client.new_account(contact: 'mailto:ops@example.test', terms_of_service_agreed: true)
order = client.new_order(identifiers: [name])
order.authorizations.each do |authz|
  challenge = authz.http
  path = File.join(webroot, challenge.filename)
  FileUtils.mkdir_p(File.dirname(path))
  File.write(path, challenge.file_content)
  challenge.request_validation
  wait_for('validation') { %w[pending processing].include?(challenge.status) && challenge.reload }
  raise "challenge #{challenge.status}: #{challenge.error}" unless challenge.status == 'valid'
end
csr = Acme::Client::CertificateRequest.new(private_key: OpenSSL::PKey::RSA.new(2048), subject: { common_name: name })
order.finalize(csr: csr)
wait_for('finalization') { order.status == 'processing' && order.reload }
raise "order #{order.status}" unless order.status == 'valid'
puts order.certificate
