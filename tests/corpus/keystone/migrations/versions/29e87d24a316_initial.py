# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

"""Initial no-op Yoga expand migration.

Revision ID: 29e87d24a316
Revises: 27e647c0fad4
Create Date: 2022-01-21 00:00:00.000000
"""

# revision identifiers, used by Alembic.
revision = '29e87d24a316'
down_revision = '27e647c0fad4'
branch_labels = ('expand',)
# milestone identifier
keystone_milestone = ['yoga']


def upgrade():
    pass
